"""What ``tocsin send`` and ``tocsin listen`` do (the typer commands in tocsin/cli.py
only read their flags)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from tocsin.client._publisher import AsyncPublisher
from tocsin.client._subscribe import Event, Transport, subscribe

PUBLISH_FIELDS = {
    "recipients": "recipients", "title": "title", "type": "type", "body": "body",
    "priority": "priority", "groupKey": "group_key", "group_key": "group_key",
    "url": "url", "actor": "actor", "source": "source", "data": "data", "ttl": "ttl",
    "idempotencyKey": "idempotency_key", "idempotency_key": "idempotency_key",
}
"""Keys a notification read from stdin may have (the API's names or snake_case) ->
:meth:`Publisher.publish` arguments."""


class InputError(ValueError):
    """Standard input is not a notification (or JSON lines of them)."""


def read_notifications(text: str) -> Iterator[dict[str, Any]]:
    """The notifications in ``text``: one JSON object, a JSON array of objects, or JSON
    lines (one object a line), each as :meth:`Publisher.publish` keyword arguments."""
    try:
        whole: Any = json.loads(text)
        items: list[tuple[int, Any]] = [
            (1, x) for x in (whole if isinstance(whole, list) else [whole])]
    except ValueError:
        items = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    items.append((number, json.loads(line)))
                except ValueError as exc:
                    raise InputError(f"line {number}: not JSON ({exc})") from None
    if not items:
        raise InputError("no notification on standard input")
    for number, item in items:
        if not isinstance(item, dict):
            raise InputError(f"line {number}: expected a JSON object")
        unknown = sorted(set(item) - set(PUBLISH_FIELDS))
        if unknown:
            raise InputError(f"line {number}: unknown field(s) {', '.join(unknown)}")
        for needed in ("recipients", "title"):
            if needed not in item:
                raise InputError(f"line {number}: {needed!r} is required")
        if isinstance(item["recipients"], str):
            item["recipients"] = [item["recipients"]]
        yield {PUBLISH_FIELDS[k]: v for k, v in item.items()}


def _text(data: Any) -> str:
    if not isinstance(data, dict):
        return json.dumps(data)
    if "title" in data:
        parts = [str(data["title"])]
        if data.get("body"):
            parts.append(f"— {data['body']}")
        return " ".join(parts)
    return json.dumps(data, ensure_ascii=False)


def printer(out: TextIO, pretty: bool) -> Callable[[Event], None]:
    """Prints events: one JSON object a line, or (``pretty``) a coloured line each."""
    if not pretty:
        def as_json(ev: Event) -> None:
            out.write(json.dumps({"id": ev.id, "event": ev.event, "data": ev.data},
                                 ensure_ascii=False) + "\n")
            out.flush()

        return as_json
    from rich.console import Console
    from rich.markup import escape

    console = Console(file=out, highlight=False)
    colours = {"urgent": "bold red", "high": "yellow", "medium": "cyan", "low": "dim"}

    def pretty_line(ev: Event) -> None:
        data = ev.data if isinstance(ev.data, dict) else {}
        priority = str(data.get("priority", ""))
        colour = colours.get(priority, "white")
        label = f"[{colour}]{escape(ev.event)}[/]"
        if priority:
            label += f" [{colour}]{escape(priority)}[/]"
        who = f" [dim]{escape(str(data['actor']))}:[/]" if data.get("actor") else ""
        console.print(f"[dim]{escape(ev.id)}[/] {label}{who} {escape(_text(ev.data))}",
                      soft_wrap=True)

    return pretty_line


async def listen(server: str, api_key: str, user: str, *, topic: str | None,
                 since: str | None, ttl: int, transport: Transport,
                 show: Callable[[Event], None]) -> None:
    """Mint tokens for ``user`` through the API (again whenever one expires) and show
    every event of the inbox (or ``topic``) as it arrives, resuming after any drop."""
    async with AsyncPublisher(server, api_key) as pub:
        async def fresh_token() -> str:
            return await pub.token(user, [topic] if topic is not None else None, ttl)

        async for event in subscribe(server, fresh_token, topic=topic, last_event_id=since,
                                     transport=transport, max_backoff=5.0):
            show(event)


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()
