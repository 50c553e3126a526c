"""What ``tocsin send``, ``tocsin listen`` and ``tocsin trail`` do (the typer commands
in tocsin/cli.py only read their flags)."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from tocsin.client._errors import TocsinAPIError
from tocsin.client._publisher import AsyncPublisher, Publisher
from tocsin.client._subscribe import Event, Status, Transport, subscribe

PUBLISH_FIELDS = {
    "recipients": "recipients", "title": "title", "type": "type", "body": "body",
    "priority": "priority", "groupKey": "group_key", "group_key": "group_key",
    "url": "url", "actor": "actor", "source": "source", "data": "data", "ttl": "ttl",
    "idempotencyKey": "idempotency_key", "idempotency_key": "idempotency_key",
    "escalation": "escalation",
}
"""Keys a notification read from stdin may have (the API's names or snake_case) ->
:meth:`Publisher.publish` arguments."""


class InputError(ValueError):
    """Standard input is not a notification (or JSON lines of them)."""


@dataclass(frozen=True, slots=True)
class Item:
    """One notification read from stdin: where it was (``line 3``, ``item 2``) and its
    :meth:`Publisher.publish` keyword arguments."""

    where: str
    fields: dict[str, Any]


KINDS: dict[str, tuple[type, ...]] = {
    "title": (str,), "type": (str,), "body": (str,), "priority": (str,),
    "group_key": (str,), "url": (str,), "actor": (str,), "source": (str,),
    "data": (dict,), "ttl": (int,), "idempotency_key": (str,), "escalation": (str,),
}
"""The JSON type each field must have (``recipients``: checked on its own)."""


def _fields(where: str, item: Any) -> Item:
    if not isinstance(item, dict):
        raise InputError(f"{where}: expected a JSON object")
    unknown = sorted(set(item) - set(PUBLISH_FIELDS))
    if unknown:
        raise InputError(f"{where}: unknown field(s) {', '.join(unknown)}")
    if "title" not in item:
        raise InputError(f"{where}: 'title' is required")
    if "recipients" not in item and "escalation" not in item:
        raise InputError(f"{where}: 'recipients' is required (or 'escalation')")
    fields = {PUBLISH_FIELDS[k]: v for k, v in item.items()}
    recipients = fields.setdefault("recipients", [])
    if isinstance(recipients, str):
        fields["recipients"] = [recipients]
    elif not (isinstance(recipients, list) and all(isinstance(r, str) for r in recipients)):
        raise InputError(f"{where}: 'recipients' must be a user id or a list of user ids, "
                         f"not {json.dumps(recipients)[:60]}")
    for name, kinds in KINDS.items():
        value = fields.get(name)
        if value is not None and (not isinstance(value, kinds) or isinstance(value, bool)):
            key = next(k for k, v in PUBLISH_FIELDS.items() if v == name and k in item)
            raise InputError(f"{where}: {key!r} must be a JSON "
                             f"{'object' if kinds == (dict,) else kinds[0].__name__}, "
                             f"not {json.dumps(value)[:60]}")
    return Item(where, fields)


def read_notifications(text: str) -> list[Item]:
    """The notifications in ``text``: one JSON object, a JSON array of objects (``item
    N``), or JSON lines (``line N``), each checked before anything is sent."""
    try:
        whole: Any = json.loads(text)
    except ValueError:
        pass
    else:
        if isinstance(whole, list):
            return [_fields(f"item {n}", x) for n, x in enumerate(whole, 1)] or _none()
        return [_fields("line 1", whole)]
    items: list[Item] = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                value = json.loads(line)
            except ValueError as exc:
                raise InputError(f"line {number}: not JSON ({exc})") from None
            items.append(_fields(f"line {number}", value))
    return items or _none()


def _none() -> list[Item]:
    raise InputError("has no notification in it")  # shown as "stdin has no …"


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


def status_printer(err: TextIO) -> Callable[[Status], None]:
    """Tells the person at the terminal why nothing arrives: a line a retry."""
    retried = False

    def show(status: Status) -> None:
        nonlocal retried
        if status.state == "retrying":
            err.write(f"retrying in {status.delay:.2g} s: {status.reason}\n")
            retried = True
        elif status.state == "connected" and retried:
            err.write("connected\n")
            retried = False
        err.flush()

    return show


async def listen(server: str, api_key: str, user: str, *, topic: str | None,
                 since: str | None, ttl: int, transport: Transport,
                 show: Callable[[Event], None],
                 on_status: Callable[[Status], None] | None = None) -> None:
    """Mint tokens for ``user`` through the API (again whenever one expires) and show
    every event of the inbox (or ``topic``) as it arrives, resuming after any drop."""
    # The retries are shown by on_status: without a handler of its own, the logger's
    # warnings would print each line twice (logging's last-resort handler).
    logging.getLogger("tocsin.client").addHandler(logging.NullHandler())
    # No retries of its own: subscribe() retries the whole connect, and says so.
    async with AsyncPublisher(server, api_key, retries=0) as pub:
        async def fresh_token() -> str:
            return await pub.token(user, [topic] if topic is not None else None, ttl)

        async for event in subscribe(server, fresh_token, topic=topic, last_event_id=since,
                                     transport=transport, max_backoff=5.0,
                                     on_status=on_status):
            show(event)


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


NOTIFICATION_ID = re.compile(r"[0-9a-f]{28}")
"""What a notification id looks like (``tocsin/ids.py``: ``new_id``); anything else
given to ``tocsin trail`` is an idempotency key."""


def fetch_trail(pub: Publisher, what: str) -> dict[str, Any]:
    """``{"notifications": [...]}``: the trail of notification ``what``, or of the
    notifications the publish with idempotency key ``what`` created (an id that has no
    trail is tried as a key too)."""
    if NOTIFICATION_ID.fullmatch(what):
        try:
            return {"notifications": [pub.trail(what)]}
        except TocsinAPIError as exc:
            if exc.status != 404:
                raise
    return pub.trail_by_key(what)


def print_trail(out: TextIO, body: dict[str, Any], pretty: bool) -> None:
    """The trail as JSON, or (``pretty``) a table per notification and recipient."""
    if not pretty:
        out.write(json.dumps(body, ensure_ascii=False, indent=2) + "\n")
        out.flush()
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(file=out, highlight=False)
    colours = {"decision": "cyan", "stream": "green", "notification": "magenta",
               "push": "yellow", "email": "yellow", "escalation": "red", "incident": "red"}
    for trail in body.get("notifications", []):
        nid = trail.get("notification") or "(not stored)"
        head = f"[bold]{escape(str(nid))}[/]"
        if trail.get("type"):
            head += f" {escape(str(trail['type']))} [dim]{escape(str(trail['priority']))}[/]"
        for recipient in trail.get("recipients", []):
            table = Table(title=f"{head} → {escape(str(recipient.get('user')))}",
                          title_justify="left", show_edge=False, pad_edge=False)
            table.add_column("when (UTC)", style="dim", no_wrap=True)
            table.add_column("what")
            table.add_column("by", style="dim")
            for step in recipient.get("steps", []):
                colour = colours.get(str(step.get("kind", "")).split(".")[0], "white")
                table.add_row(_when(step.get("at")),
                              f"[{colour}]{escape(str(step.get('summary', step.get('kind'))))}[/]",
                              escape(str(step.get("by") or "")))
            console.print(table)
            console.print()


def _when(at: Any) -> str:
    if not isinstance(at, int):
        return "?"
    moment = datetime.fromtimestamp(at / 1000, UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{at % 1000:03d}"
