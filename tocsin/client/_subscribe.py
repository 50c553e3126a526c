"""``subscribe()``: a user's inbox or a topic feed as an async iterator of events, over
SSE or WebSocket, that resumes by itself.

- After any disconnect (network, server restart, graceful shutdown) it reconnects with
  exponential backoff and jitter and resumes exactly after the last event it yielded.
- ``reset`` events (the position cannot be continued: refetch over HTTP) are yielded
  and the position moves to the reset's id.
- Token expiry (SSE ``expired`` event, WebSocket close code 4001, or a 401 on
  reconnect) makes it ask ``token`` for a new one when ``token`` is a function, and
  resume from the last id: nothing lost or repeated. With a token string, the 401
  raises :class:`TocsinAPIError`. A token function is also asked ahead of time when the
  current token (a JWT) is about to expire.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import json
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, urlencode

import httpx
from httpx_sse import aconnect_sse

from tocsin.client._errors import TocsinAPIError

TokenFunction = Callable[[], "str | Awaitable[str]"]
"""Returns a fresh subscriber token (a plain or an async function)."""
Transport = Literal["sse", "ws"]
EXPIRED_CLOSE_CODE = 4001
"""WebSocket close code: the token expired (or was never sent)."""
CLOSE_REFUSED = 4003
"""WebSocket close code: credentials refused (not a matter of expiry)."""
CLOSE_BAD_MESSAGE = 4000
"""WebSocket close code: the server did not understand a message."""
WS_ERROR_STATUS = {"unauthorized": 401, "forbidden": 403, "not_found": 404,
                   "rate_limited": 429, "too_many_streams": 429,
                   "store_unavailable": 503}
"""HTTP status for a WebSocket ``{"error": {code}}`` frame (others: 400)."""
FATAL_STATUSES = frozenset({400, 401, 403, 404, 405, 410, 415})
"""Replies that reconnecting will not change."""


@dataclass(frozen=True, slots=True)
class Event:
    """One stream event: ``id`` (``<epoch>-<seq>``), ``event`` (``notification``,
    ``read``, ``activity``, ``reset``, ...) and its JSON ``data``."""

    id: str
    event: str
    data: Any


class _Dropped(Exception):
    """The connection failed or dropped: reconnect after a backoff."""


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT, read without verifying (None if unreadable)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None


class _Tokens:
    """The current token, refreshed through the app's function when there is one."""

    def __init__(self, source: str | TokenFunction, skew: float) -> None:
        self.function = None if isinstance(source, str) else source
        self.value: str | None = source if isinstance(source, str) else None
        self.skew = skew

    async def current(self) -> str:
        expiry = None if self.value is None else jwt_expiry(self.value)
        stale = expiry is not None and expiry - self.skew <= time.time()
        if self.value is None or (stale and self.function is not None):
            await self.refresh()  # a transient failure in it: _Dropped, tried again
        assert self.value is not None
        return self.value

    async def refresh(self) -> None:
        if self.function is None:
            return  # a token string: the server's 401 will say it
        try:
            got = self.function()
            self.value = str(await got) if inspect.isawaitable(got) else str(got)
        except (httpx.TransportError, OSError) as exc:
            raise _Dropped(f"token function: {exc}") from exc


@dataclass(slots=True)
class _State:
    last_event_id: str | None
    retry_ms: int = 3000
    connected: bool = False
    expired: bool = False

    def event(self, event_id: str, name: str, data: Any) -> Event:
        if name == "reset" and not event_id and isinstance(data, dict):
            event_id = str(data.get("lastEventId", ""))
        if event_id:
            self.last_event_id = event_id
        return Event(event_id, name, data)


async def _sse(client: httpx.AsyncClient, path: str, token: str,
               state: _State) -> AsyncGenerator[Event, None]:
    headers = {"Authorization": f"Bearer {token}"}
    if state.last_event_id is not None:
        headers["Last-Event-ID"] = state.last_event_id
    try:
        async with aconnect_sse(client, "GET", path, headers=headers) as source:
            if source.response.status_code >= 400:
                await source.response.aread()
                raise TocsinAPIError.from_response(source.response)
            state.connected = True
            async for sse in source.aiter_sse():
                if sse.retry is not None:
                    state.retry_ms = sse.retry
                if sse.event == "expired":
                    state.expired = True
                    return
                if not sse.event or sse.event == "message" or not sse.data:
                    continue  # pings, retry
                yield state.event(sse.id, sse.event, json.loads(sse.data))
    except httpx.TransportError as exc:
        raise _Dropped(str(exc)) from exc


def _ws_error(frame: dict[str, Any]) -> TocsinAPIError:
    """The error of a ``{"op": "error", "error": {code, message, retryAfter?}}`` frame."""
    body = frame.get("error")
    code = str(body.get("code", "")) if isinstance(body, dict) else ""
    err = TocsinAPIError.from_body(WS_ERROR_STATUS.get(code, 400), frame)
    hint = body.get("retryAfter") if isinstance(body, dict) else None
    if isinstance(hint, int | float):
        err.retry_after = float(hint)
    return err


async def _ws(base: str, stream: str, token: str,
              state: _State) -> AsyncGenerator[Event, None]:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

    url = "ws" + base.removeprefix("http") + "/api/ws?" + urlencode({"token": token})
    try:
        async with connect(url, open_timeout=15, max_size=32 * 2**20) as ws:
            request: dict[str, Any] = {"op": "subscribe", "stream": stream}
            if state.last_event_id is not None:
                request["since"] = state.last_event_id
            try:
                await ws.send(json.dumps(request))
                async for raw in ws:
                    frame = json.loads(raw)
                    if not isinstance(frame, dict):
                        continue
                    if "error" in frame:
                        raise _ws_error(frame)
                    state.connected = True  # acked ({"op": "subscribed"}) or an event
                    if frame.get("stream", stream) != stream or "event" not in frame:
                        continue
                    yield state.event(str(frame.get("id") or ""), str(frame["event"]),
                                      frame.get("data"))
            except ConnectionClosed:
                pass
            code, reason = ws.close_code, ws.close_reason or ""
            if code == EXPIRED_CLOSE_CODE:
                state.expired = True
            elif code == CLOSE_REFUSED:
                raise TocsinAPIError(403, "refused", reason or "credentials refused")
            elif code == CLOSE_BAD_MESSAGE:
                raise TocsinAPIError(400, "bad_message", reason)
            elif code not in (1000, 1001):
                raise _Dropped(f"closed with code {code} {reason}")
    except InvalidStatus as exc:
        r = exc.response
        try:
            body: Any = json.loads(r.body or b"{}")
        except ValueError:
            body = {"error": {"code": "http_error", "message": (r.body or b"")[:200]}}
        raise TocsinAPIError.from_body(r.status_code, body) from exc
    except (OSError, InvalidHandshake, TimeoutError) as exc:
        raise _Dropped(str(exc)) from exc


async def subscribe(
    url: str,
    token: str | TokenFunction,
    *,
    topic: str | None = None,
    last_event_id: str | None = None,
    transport: Transport = "sse",
    initial_backoff: float = 0.5,
    max_backoff: float = 30.0,
    read_timeout: float = 90.0,
    refresh_skew: float = 5.0,
) -> AsyncIterator[Event]:
    """Yield the events of the token's user's inbox (or of ``topic``) forever.

    ``token``: a subscriber token, or a function (plain or async) returning a fresh one,
    called when the token expires. ``last_event_id``: resume after this id (``"0"``:
    from the start of the retained history); None: live events only.
    ``transport``: ``"sse"`` or ``"ws"`` (the server's ``/api/ws``). Reconnects after
    ``initial_backoff`` seconds doubling up to ``max_backoff``, with jitter; a silent
    SSE connection (no event nor ping for ``read_timeout`` seconds) counts as dropped.
    Raises :class:`TocsinAPIError` for replies that retrying cannot change (400, 401
    without a token function or again after a refresh, 403, 404)."""
    base = url.rstrip("/")
    if topic is not None:
        path = f"/api/topics/{quote(topic, safe=':@')}/stream"
    else:
        path = "/api/notifications/stream"
    stream = f"topic:{topic}" if topic is not None else "inbox"
    tokens = _Tokens(token, refresh_skew)
    state = _State(last_event_id)
    failures = 0
    refreshed = False  # a refresh since the last successful connect
    refresh = False  # ask the token function before the next connect
    async with httpx.AsyncClient(base_url=base,
                                 timeout=httpx.Timeout(15, read=read_timeout)) as client:
        while True:
            state.connected = state.expired = False
            hint: float | None = None
            try:
                if refresh:
                    await tokens.refresh()
                    refresh = False
                current = await tokens.current()
                events = (_sse(client, path, current, state) if transport == "sse"
                          else _ws(base, stream, current, state))
                # Closed here, not by the garbage collector, when the caller stops early.
                async with contextlib.aclosing(events):
                    async for ev in events:
                        failures, refreshed = 0, False
                        yield ev
                if state.connected:
                    failures, refreshed = 0, False
                if state.expired:
                    if tokens.function is None or (refreshed and not state.connected):
                        raise TocsinAPIError(401, "unauthorized", "The token has expired.")
                    refreshed = refresh = True
                    continue  # at once, from the last id
            except TocsinAPIError as err:
                if err.status == 401 and tokens.function is not None and not refreshed:
                    refreshed = refresh = True
                    continue
                if err.status in FATAL_STATUSES:
                    raise
                failures += 1
                hint = err.retry_after
            except _Dropped:
                failures += 1
            if failures:
                delay = min(max_backoff, initial_backoff * 2.0 ** (failures - 1))
                delay *= random.uniform(0.5, 1.0)
                await asyncio.sleep(max(delay, min(hint or 0.0, max_backoff * 2)))
            else:  # the server ended the stream (e.g. a graceful shutdown)
                await asyncio.sleep(state.retry_ms / 1000 * random.uniform(0.1, 0.3))
