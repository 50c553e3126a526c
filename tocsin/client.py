"""A small Python client for Tocsin (httpx + httpx-sse).

    from tocsin.client import Publisher, subscribe

    with Publisher("http://127.0.0.1:8000", api_key) as pub:
        pub.publish(["alice"], "Deploy finished", priority="high")

    async for event in subscribe("http://127.0.0.1:8000", token):
        print(event.id, event.event, event.data)

``subscribe`` resumes from the last event id after any disconnect, with
exponential backoff and jitter, the way a browser's EventSource does.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx
from httpx_sse import aconnect_sse

__all__ = ["Event", "Publisher", "TocsinAPIError", "subscribe"]


class TocsinAPIError(Exception):
    """A 4xx/5xx reply: ``status``, ``code``, ``message`` and ``field`` from the server."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        err = body.get("error", {}) if isinstance(body, dict) else {}
        self.status = status
        self.code = str(err.get("code", "unknown"))
        self.message = str(err.get("message", ""))
        self.field = err.get("field")
        super().__init__(f"{status} {self.code}: {self.message}")


def _check(r: httpx.Response) -> Any:
    if r.status_code >= 400:
        try:
            body = r.json()
        except ValueError:
            body = {"error": {"code": "http_error", "message": r.text[:200]}}
        raise TocsinAPIError(r.status_code, body)
    return r.json()


class Publisher:
    """For an app's backend: publish notifications and topic events, mint tokens."""

    def __init__(self, url: str, api_key: str, *, timeout: float = 30.0) -> None:
        self._http = httpx.Client(base_url=url.rstrip("/"), timeout=timeout,
                                  headers={"Authorization": f"Bearer {api_key}"})

    def publish(self, recipients: list[str], title: str, *, type: str = "message",
                body: str = "", priority: str = "medium", **fields: Any) -> dict[str, str]:
        """Returns ``{recipient: notification id}``. Extra fields: ``group_key``, ``url``,
        ``actor``, ``source``, ``data``, ``ttl``, ``idempotency_key``."""
        payload: dict[str, Any] = {"recipients": recipients, "type": type, "title": title,
                                   "body": body, "priority": priority}
        for key, value in fields.items():
            camel = key.split("_")[0] + "".join(p.title() for p in key.split("_")[1:])
            payload[camel] = value
        ids: dict[str, str] = _check(self._http.post("/api/notifications", json=payload))["ids"]
        return ids

    def post_event(self, topic: str, title: str, *, type: str = "activity", body: str = "",
                   actor: str | None = None, data: dict[str, Any] | None = None
                   ) -> dict[str, Any]:
        payload: dict[str, Any] = {"type": type, "title": title, "body": body}
        if actor is not None:
            payload["actor"] = actor
        if data is not None:
            payload["data"] = data
        event: dict[str, Any] = _check(self._http.post(f"/api/topics/{topic}/events",
                                                       json=payload))
        return event

    def token(self, user: str, topics: list[str] | None = None, ttl: int = 3600) -> str:
        body = {"user": user, "topics": topics, "ttl": ttl}
        return str(_check(self._http.post("/api/tokens", json=body))["token"])

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    event: str
    data: Any


async def subscribe(
    url: str,
    token: str,
    *,
    topic: str | None = None,
    last_event_id: str | None = None,
    max_backoff: float = 30.0,
) -> AsyncIterator[Event]:
    """Yield events of the user's inbox (or of ``topic``) forever, resuming exactly
    after the last one received whenever the connection drops."""
    path = f"/api/topics/{topic}/stream" if topic else "/api/notifications/stream"
    failures = 0
    retry_ms = 3000
    async with httpx.AsyncClient(base_url=url.rstrip("/"),
                                 timeout=httpx.Timeout(10, read=None)) as client:
        while True:
            headers = {"Authorization": f"Bearer {token}"}
            if last_event_id is not None:
                headers["Last-Event-ID"] = last_event_id
            try:
                async with aconnect_sse(client, "GET", path, headers=headers) as source:
                    if source.response.status_code >= 400:
                        await source.response.aread()
                        _check(source.response)
                    failures = 0
                    async for sse in source.aiter_sse():
                        if sse.retry is not None:
                            retry_ms = sse.retry
                        if not sse.event or sse.event == "message":
                            continue  # comments and pings
                        if sse.id:
                            last_event_id = sse.id
                        yield Event(sse.id, sse.event, json.loads(sse.data))
            except TocsinAPIError as err:
                if err.status in (401, 403, 404):
                    raise  # retrying will not help
                failures += 1
            except (httpx.TransportError, httpx.RemoteProtocolError):
                failures += 1
            delay = min(max_backoff, retry_ms / 1000 * (2 ** min(failures, 6)))
            await asyncio.sleep(delay * random.uniform(0.5, 1.0) if failures else
                                retry_ms / 1000 * random.uniform(0.1, 0.3))
