"""``subscribe()``: a user's inbox or a topic feed as an async iterator of events, over
SSE or WebSocket, that resumes by itself.

- After any disconnect (network, server restart, graceful shutdown) it reconnects with
  exponential backoff and jitter and resumes exactly after the last event it yielded.
  Each wait is logged to the ``tocsin.client`` logger ("retrying in 2 s: connection
  refused") and told to ``on_status``.
- ``reset`` events (the position cannot be continued: refetch over HTTP) are yielded
  and the position moves to the reset's id.
- A token function is asked once per token, ahead of its expiry (see ``_tokens.py``).
  Over WebSocket the new token extends the open socket (an ``auth`` message); over SSE
  the stream ends at the old token's expiry (``expired``) and resumes with the new one
  from the last id: nothing lost or repeated. With a token string, expiry raises
  :class:`AuthenticationError`.
- Over WebSocket the token travels in the first ``auth`` message, never in the URL
  (where proxies and access logs keep it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal, cast
from urllib.parse import quote

import httpx
from httpx_sse import aconnect_sse

from tocsin.client._errors import TocsinAPIError, TocsinConnectionError, api_error, check
from tocsin.client._models import Acked, Digest, InboxChange, Notification, TopicEvent
from tocsin.client._tokens import AsyncTokens, TokenFunction, jwt_expiry

__all__ = ["Event", "Status", "TokenFunction", "jwt_expiry", "subscribe"]

log = logging.getLogger("tocsin.client")

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
    """One stream event: ``id`` (``<epoch>-<seq>``), ``event`` (its kind: see
    docs/python.md) and its JSON ``data``. The properties give ``data`` its type when
    the kind has it (else None): ``ev.notification["title"]`` for a ``notification``
    or ``updated`` event."""

    id: str
    event: str
    data: Any

    @property
    def notification(self) -> Notification | None:
        """``notification`` (new, or back from a snooze) and ``updated`` events."""
        return cast(Notification, self.data) if self.event in NOTIFICATION_KINDS else None

    @property
    def change(self) -> InboxChange | None:
        """``read``, ``unread``, ``read_all``, ``deleted`` and ``snoozed`` events."""
        return cast(InboxChange, self.data) if self.event in CHANGE_KINDS else None

    @property
    def acked(self) -> Acked | None:
        return cast(Acked, self.data) if self.event == "acked" else None

    @property
    def digest(self) -> Digest | None:
        return cast(Digest, self.data) if self.event == "digest" else None

    @property
    def activity(self) -> TopicEvent | None:
        """A topic feed's ``activity`` events."""
        return cast(TopicEvent, self.data) if self.event == "activity" else None


NOTIFICATION_KINDS = frozenset({"notification", "updated"})
CHANGE_KINDS = frozenset({"read", "unread", "read_all", "deleted", "snoozed"})


@dataclass(frozen=True, slots=True)
class Status:
    """What ``subscribe`` is doing, for ``on_status``: ``"connected"`` (the stream is
    open), ``"retrying"`` (it dropped or could not open: ``delay`` seconds until the
    next attempt, ``attempt`` counting failures in a row, ``reason``), or
    ``"refreshing"`` (a new token was asked for)."""

    state: Literal["connected", "retrying", "refreshing"]
    delay: float = 0.0
    attempt: int = 0
    reason: str = ""


StatusCallback = Callable[[Status], None]


class _Dropped(Exception):
    """The connection failed or dropped: reconnect after a backoff."""


class _Fatal(Exception):
    """The token function raised an error that asking again will not change."""

    def __init__(self, error: TocsinAPIError) -> None:
        super().__init__(str(error))
        self.error = error


def _reason(exc: BaseException) -> str:
    """A short cause: "connection refused" wherever in the chain a refusal is."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError) or "refused" in str(seen).lower():
            return "connection refused"
        seen = seen.__cause__ or seen.__context__
    return str(exc) or type(exc).__name__


@dataclass(slots=True)
class _State:
    last_event_id: str | None
    retry_ms: int = 3000
    connected: bool = False
    expired: bool = False
    on_token: Callable[[str], Any] | None = None
    """While a WebSocket is open: sends a renewed token on it."""
    on_connect: Callable[[], None] | None = None

    def mark_connected(self) -> None:
        if not self.connected:
            self.connected = True
            if self.on_connect is not None:
                self.on_connect()

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
            state.mark_connected()
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
        raise _Dropped(_reason(exc)) from exc


async def _head(client: httpx.AsyncClient, listing: str, token: str) -> str | None:
    """The stream's newest event id, from its listing's ``lastEventId``."""
    try:
        r = await client.get(listing, params={"limit": 1},
                             headers={"Authorization": f"Bearer {token}"})
    except httpx.TransportError as exc:
        raise _Dropped(_reason(exc)) from exc
    head = check(r).get("lastEventId")
    return None if head is None else str(head)


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

    url = "ws" + base.removeprefix("http") + "/api/ws"
    try:
        async with connect(url, open_timeout=15, max_size=32 * 2**20) as ws:
            request: dict[str, Any] = {"op": "subscribe", "stream": stream}
            if state.last_event_id is not None:
                request["since"] = state.last_event_id

            async def renewed(fresh: str) -> None:
                with contextlib.suppress(ConnectionClosed):
                    await ws.send(json.dumps({"op": "auth", "token": fresh}))

            try:
                await ws.send(json.dumps({"op": "auth", "token": token}))
                await ws.send(json.dumps(request))
                state.on_token = renewed
                async for raw in ws:
                    frame = json.loads(raw)
                    if not isinstance(frame, dict):
                        continue
                    if "error" in frame:
                        raise _ws_error(frame)
                    if frame.get("op") == "subscribed" or "event" in frame:
                        state.mark_connected()
                    if (frame.get("op") == "subscribed" and state.last_event_id is None
                            and frame.get("stream") == stream and frame.get("position")):
                        # Where a live-only subscription started: a reconnect resumes here.
                        state.last_event_id = str(frame["position"])
                    if frame.get("stream", stream) != stream or "event" not in frame:
                        continue
                    yield state.event(str(frame.get("id") or ""), str(frame["event"]),
                                      frame.get("data"))
            except ConnectionClosed:
                pass
            finally:
                state.on_token = None
            code, reason = ws.close_code, ws.close_reason or ""
            if code == EXPIRED_CLOSE_CODE:
                state.expired = True
            elif code == CLOSE_REFUSED:
                # The token was refused: the same error an SSE connect gets for it
                # (401 unauthorized, the server's message).
                raise api_error(401, "unauthorized", reason or "Invalid API key or token.")
            elif code == CLOSE_BAD_MESSAGE:
                raise api_error(400, "bad_message", reason)
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
        raise _Dropped(_reason(exc)) from exc


async def _renew(tokens: AsyncTokens, state: _State,
                 report: Callable[[Status], None]) -> None:
    """Asks the token function for the next token when it is due, once per token; a
    WebSocket then carries it on the open socket."""
    while True:
        wait = tokens.renew_in()
        if wait is None:
            return
        await asyncio.sleep(max(0.0, wait))
        before = tokens.value
        if not tokens.due():
            continue  # the connect loop already fetched one
        try:
            report(Status("refreshing"))
            fresh = await tokens.fetch()
        except Exception as exc:  # the app's function: retried at the next connect
            log.warning("token function failed: %s", _reason(exc))
            return
        if fresh == before or tokens.due():
            return  # no newer token to be had: the expiry path will ask again
        if state.on_token is not None:
            await state.on_token(fresh)


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
    on_status: StatusCallback | None = None,
) -> AsyncIterator[Event]:
    """Yield the events of the token's user's inbox (or of ``topic``) forever.

    ``token``: a subscriber token, or a function (plain or async) returning a fresh one,
    called once per token, ``refresh_skew`` seconds (at most a quarter of its life)
    before it expires. ``last_event_id``: resume after this id (``"0"``: from the start
    of the retained history); None: live events only, those published from this call on
    (a reconnect resumes from where the first connection started: over SSE the stream's
    head is read over HTTP first; a WebSocket's ``subscribed`` reply gives it).
    ``transport``: ``"sse"`` or ``"ws"`` (the server's ``/api/ws``). Reconnects after
    ``initial_backoff`` seconds doubling up to ``max_backoff``, with jitter; a silent SSE
    connection (no event nor ping for ``read_timeout`` seconds) counts as dropped.
    ``on_status`` is called with a :class:`Status` as the connection opens, drops and
    retries. Raises :class:`TocsinAPIError` for replies that retrying cannot change (400,
    401 without a token function or again after a new token, 403, 404)."""
    base = url.rstrip("/")
    if topic is not None:
        path = f"/api/topics/{quote(topic, safe=':@')}/stream"
        listing = f"/api/topics/{quote(topic, safe=':@')}/events"
    else:
        path, listing = "/api/notifications/stream", "/api/notifications"
    stream = f"topic:{topic}" if topic is not None else "inbox"
    tokens = AsyncTokens(token, refresh_skew)
    state = _State(last_event_id)

    def report(status: Status) -> None:
        if on_status is not None:
            on_status(status)

    state.on_connect = lambda: report(Status("connected"))

    failures = 0
    refreshed = False  # a token fetched since the last successful connect
    force = False  # ask the token function before the next connect
    renewal: asyncio.Task[None] | None = None
    async with httpx.AsyncClient(base_url=base,
                                 timeout=httpx.Timeout(15, read=read_timeout)) as client:
        try:
            while True:
                state.connected = state.expired = False
                hint: float | None = None
                reason = ""
                try:
                    try:
                        if force or tokens.needs_fetch():
                            if tokens.value is not None:  # not the first: a new one
                                report(Status("refreshing"))
                                refreshed = True
                            await tokens.get(force=force)
                            force = False
                    except (TocsinConnectionError, httpx.TransportError, OSError) as exc:
                        raise _Dropped(f"token function: {_reason(exc)}") from exc
                    except TocsinAPIError as err:  # e.g. a Publisher.token that is refused
                        if err.status in FATAL_STATUSES:
                            raise _Fatal(err) from err
                        raise _Dropped(f"token function: {err}") from err
                    if renewal is None or renewal.done():
                        renewal = asyncio.create_task(_renew(tokens, state, report))
                    used = tokens.value
                    assert used is not None
                    if state.last_event_id is None and transport == "sse":
                        # Live only means from this call on, across reconnects too. An
                        # SSE stream says nowhere where it started (a WebSocket does: its
                        # `subscribed` position), so one that dropped before its first
                        # event would reconnect live-only and lose what came meanwhile.
                        state.last_event_id = await _head(client, listing, used)
                    events = (_sse(client, path, used, state) if transport == "sse"
                              else _ws(base, stream, used, state))
                    # Closed here, not by the garbage collector, when the caller stops.
                    async with contextlib.aclosing(events):
                        async for ev in events:
                            if failures or refreshed:
                                failures, refreshed = 0, False
                            yield ev
                    if state.connected:
                        failures, refreshed = 0, False
                    if state.expired:
                        if tokens.function is None or (refreshed and not state.connected):
                            raise api_error(401, "unauthorized", "The token has expired.")
                        # A token renewed ahead of time is used as it is; else ask now.
                        force = tokens.value == used
                        continue  # at once, from the last id
                except TocsinAPIError as err:
                    if err.status == 401 and tokens.function is not None and not refreshed:
                        force = True
                        continue
                    if err.status in FATAL_STATUSES:
                        raise
                    failures += 1
                    hint, reason = err.retry_after, f"{err.status} {err.code}"
                except _Dropped as exc:
                    failures += 1
                    reason = str(exc)
                except _Fatal as fatal:
                    raise fatal.error from None
                if failures:
                    delay = min(max_backoff, initial_backoff * 2.0 ** (failures - 1))
                    delay = max(delay * random.uniform(0.5, 1.0),
                                min(hint or 0.0, max_backoff * 2))
                    log.warning("retrying in %.2g s: %s", delay, reason)
                    report(Status("retrying", delay, failures, reason))
                    await asyncio.sleep(delay)
                else:  # the server ended the stream (e.g. a graceful shutdown)
                    await asyncio.sleep(state.retry_ms / 1000 * random.uniform(0.1, 0.3))
        finally:
            if renewal is not None:
                renewal.cancel()
