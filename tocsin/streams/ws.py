"""``GET /api/ws``: one WebSocket carrying the user's inbox and any number of topics.

The gate (``api/gate.py``) has settled the credential from the upgrade request (the
same ``auth.find_credential`` rule as the streams, with an Origin check for the
cookie) or left it to the first message, ``{"op": "auth", "token": "..."}``.

Client → server (JSON text messages):
- ``{"op": "auth", "token"}`` — first message when the upgrade carried no token; later,
  a fresh token of the same user extends the socket's life (refresh without loss);
- ``{"op": "subscribe", "stream": "inbox" | "topic:<name>", "since"?: <event id>,
  "presence"?: true}`` — acked with ``{"op": "subscribed", "stream", "position"}``,
  then the stream's events after ``since`` (or live from ``position`` without it) as
  ``{stream, id, event, data}``; subscribing again to a stream repositions it.
  ``presence: true`` on a topic adds its live-only presence changes as ``{stream,
  event: "presence", data: {user, state, since}}`` frames, with no ``id`` (the SSE
  stream's ``?presence=1``: ``docs/presence.md``);
- ``{"op": "unsubscribe", "stream"}`` → ``{"op": "unsubscribed", "stream"}``;
- ``{"op": "ping"}`` → ``{"op": "pong"}`` (browsers cannot see protocol pings).

Every message after the socket is authenticated spends a read token (``--rate-reads``);
a refused one changes nothing. A later ``auth`` ends each topic subscription the new
token does not allow.

Errors are ``{"op": "error", "stream"?, "error": {"code", "message"}}`` with the HTTP
API's codes (``forbidden``, ``too_many_streams``, ``rate_limited`` …). Close codes:
4001 token expired (or never sent), 4003 credentials refused, 4000 bad message,
4008 policy (rate limit or stream cap at connect, control replies left unread), 1009
message too large (the protocol's, ``server.py``), 1001 server shutting down.

Bounds: messages of 16 KiB (``MAX_MESSAGE_BYTES``), control replies waiting to be
written (past ``CONTROL_PAUSE_BYTES`` the reader stops reading until they go out; not
gone in ``DRAIN_TIMEOUT_S``, or past ``MAX_CONTROL_BYTES``: close 4008), and the socket
itself under the per-user cap as ``max(1, subscriptions)``.

Each subscription is a :class:`~tocsin.streams.follow.JsonConnection` in the hub and
follows the SSE rules exactly (``follow.py``: the same position rule, ``reset``,
catch-up reads and bounded outbox); one writer per socket drains them all, a task that
exists only while there is something to write. Under uvicorn the socket is parked once
authenticated and between two messages (``wspark.py``: Tocsin's own protocol on the
socket, the request task ends, each later message runs in a short task), and a live
frame goes straight to the socket (``direct.py: ws_text_frame``: the frame header and
payload built once per event and shared by every socket, as a server's frames are
unmasked) when nothing is queued ahead of it on that socket, as SSE chunks do. Protocol
pings (uvicorn's ``--ws-ping-interval``/``timeout``, 20 s each; for parked sockets one
round per interval over all of them) drop dead peers with 1011; the token's expiry is a
slot of the hub's ``Expiries``, as a stream's. A socket whose client does not read
blocks its writer, and its subscriptions fall back to the store like a slow SSE client.
Under another server the session reads and writes through ASGI throughout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from tocsin.auth import Principal, Subscriber, check_topic
from tocsin.errors import TocsinError
from tocsin.events import topic_stream, user_stream
from tocsin.ids import Position, event_id, parse_position
from tocsin.ratelimit import RateLimited
from tocsin.streams.connection import MAX_OUTBOX_BYTES
from tocsin.streams.direct import LightEvent, WsSocket, ws_text_frame
from tocsin.streams.follow import Follower, JsonConnection
from tocsin.streams.hub import Hub
from tocsin.streams.wspark import ParkedWs, take_over

log = logging.getLogger("tocsin.ws")

WS_PATH = "/api/ws"
AUTH_TIMEOUT_S = 5.0
"""How long a socket opened without a token has to send ``{"op": "auth"}``."""
MAX_MESSAGE_BYTES = 16 * 1024
"""Largest client message; ``server.py`` also sets it as uvicorn's ``ws_max_size`` so
that it applies to frames and fragments before a message is assembled."""
CONTROL_PAUSE_BYTES = 32 * 1024
"""Control replies (``pong``, ``subscribed``, ``unsubscribed``, errors …) waiting to be
written past which the reader stops reading the client's messages until the writer has
sent them: the client's own sends back up (TCP), so a fast client is slowed, not
closed. Unlike events, replies cannot be read again from the store."""
DRAIN_TIMEOUT_S = 10.0
"""How long the reader waits for those replies to go out; a client that does not read
them in that time is closed with 4008."""
MAX_CONTROL_BYTES = MAX_OUTBOX_BYTES // 2
"""The hard bound on waiting replies (128 KiB, as an event outbox is bounded): above
``CONTROL_PAUSE_BYTES`` by more than the replies of any one message (an ``auth`` that
ends 100 subscriptions writes ~50 KB); past it the socket is closed with 4008."""

CLOSE_SHUTDOWN = 1001
CLOSE_RESTART = 1012
CLOSE_BAD_MESSAGE = 4000
CLOSE_EXPIRED = 4001
CLOSE_REFUSED = 4003
CLOSE_POLICY = 4008

NEVER_ISSUED = Position("!", -1)


class _RedactTokens(logging.Filter):
    """uvicorn logs each WebSocket upgrade's path with its query string at INFO (the
    HTTP access log is off, this is not): never write ``?token=`` to the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args and isinstance(record.args, tuple) and any(
                isinstance(a, str) and "token=" in a for a in record.args):
            record.args = tuple(_TOKEN.sub(r"\1token=…", a) if isinstance(a, str) else a
                                for a in record.args)
        return True


_TOKEN = re.compile(r"([?&])token=[^&\s\"]*")
logging.getLogger("uvicorn.error").addFilter(_RedactTokens())

Authenticate = Callable[[str], Principal]
"""Checks a token from an ``auth`` message (raises ``TocsinError``)."""
RateCheck = Callable[[Subscriber], Awaitable[None]]
"""Spends one read token of the user (raises ``RateLimited``)."""


def close_code(err: TocsinError) -> int:
    """The close code for a socket refused at the upgrade: 4001 when the token expired,
    4003 for other credential errors, 4008 for the rest (rate limits)."""
    if err.code == "unauthorized":
        return CLOSE_EXPIRED if "expired" in err.message else CLOSE_REFUSED
    return CLOSE_REFUSED if err.code == "forbidden" else CLOSE_POLICY


def error_frame(err: TocsinError, stream: str | None = None) -> bytes:
    body: dict[str, Any] = {"op": "error", **err.body()}
    if stream is not None:
        body["stream"] = stream
    if isinstance(err, RateLimited):
        body["error"]["retryAfter"] = err.retry_after
    return orjson.dumps(body)


class _Close(Exception):
    def __init__(self, code: int, reason: str = "", frame: bytes | None = None) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason
        self.frame = frame
        """An error frame sent just before the close (a refusal at connect): its code
        and ``retryAfter`` say what a close code and reason cannot, the same body an SSE
        connect gets."""


async def _parked_send(message: Any) -> None:
    """The ASGI ``send`` of a parked session: never called (every write goes through
    the parked protocol), there so the writer starts as it does before parking."""


class _Sub:
    __slots__ = ("conn", "follower", "label")

    def __init__(self, label: str, conn: JsonConnection, follower: Follower) -> None:
        self.label, self.conn, self.follower = label, conn, follower


class WebSocketSession:
    """One socket: the reader is the request's task until the socket is parked
    (``wspark.py``: then each message runs in a short task of its own), plus a writer
    task while there is something to write (``_kick``).

    Counted under the per-user cap as ``max(1, subscriptions)``: while it follows no
    stream the socket itself holds one place (``Hub.hold``), which its first
    subscription takes over and its last unsubscribe gives back."""

    __slots__ = ("_close_sent", "_drained", "_holding", "_registered", "_send", "_task",
                 "authenticate", "closing", "control", "control_bytes", "done", "expires",
                 "hub", "max_open", "parked", "rate", "refused", "sock", "subs", "who")

    def __init__(self, hub: Hub, who: Subscriber | None, refused: TocsinError | None,
                 authenticate: Authenticate, rate: RateCheck, max_open: int | None) -> None:
        self.hub = hub
        self.who = who
        self.refused = refused
        self.authenticate = authenticate
        self.rate = rate
        self.max_open = max_open
        self.subs: dict[str, _Sub] = {}
        self.control: list[bytes] = []
        self.control_bytes = 0
        """Bytes of control replies queued or being written (``MAX_CONTROL_BYTES``)."""
        self._task: asyncio.Task[None] | None = None
        """The writer, while it has something to write (``_kick``); ``None`` when idle."""
        self._send: Send | None = None
        self.sock: WsSocket | ParkedWs | None = None
        """The socket under uvicorn's protocol, then parked, for direct writes (``None``
        under other servers)."""
        self.parked: ParkedWs | None = None
        """The socket's protocol once parked (``wspark.py``)."""
        self._close_sent = False
        self._drained: LightEvent | None = None
        """Set by the writer as control replies go out (and when anything closes); made
        only when the reader first waits for replies to go out."""
        self.closing: _Close | None = None
        self.expires: int | None = None
        """The second the token expires, while the hub's ``Expiries`` holds the socket
        (one slot in a set, not a loop timer per socket)."""
        self.done = False
        """The socket is gone (parked: its protocol saw the connection end)."""
        self._registered = 0
        """This socket's connections in the hub (subscriptions, and one being positioned)."""
        self._holding = False
        """Whether the socket itself holds a place under the cap (``Hub.hold``)."""

    # -- the request task: handshake, then the reader -----------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        self.hub.socket_opened(self)
        self.sock = WsSocket.of(send)
        started = False
        try:
            if self.refused is not None:
                raise _Close(close_code(self.refused), self.refused.message)
            if self.who is None:
                await self._first_auth(receive)
            assert self.who is not None
            try:
                await self.rate(self.who)  # a connect spends a read token, like a stream's
                # An idle socket holds a place like a stream: checked and held with no
                # await in between, so concurrent connects cannot slip past the cap.
                self.hub.check_cap(self.who.user, self.max_open)
            except TocsinError as err:
                raise _Close(CLOSE_POLICY, err.message, error_frame(err)) from None
            self._hold()
            self._schedule_expiry()
            self._send, started = send, True  # from now on ``_kick`` starts the writer
            if self.control:
                self._kick()
            await self._read(receive, send)
        except _Close as c:
            if c.frame is not None and not started:
                with contextlib.suppress(Exception):
                    await send({"type": "websocket.send", "text": c.frame.decode()})
            self._close(c.code, c.reason)
        finally:
            if self.parked is None:
                await self._end(send)

    async def _end(self, send: Send) -> None:
        """The end of a socket read through ASGI (a parked one: ``ended``)."""
        # Nothing more is queued for a closing socket: its subscriptions leave the
        # hub now, even if the writer is still blocked on a client that does not read.
        for sub in list(self.subs.values()):
            self._unregister(sub.conn)
        self.subs.clear()
        self.control.clear()
        if self.expires is not None:
            self.hub.expiries.discard(self)
        if self.closing is None:  # the reader failed (cancelled, or a bug)
            self.closing = _Close(CLOSE_POLICY)
        if self._task is not None:  # it sees ``closing``, ends, and sends the close
            with contextlib.suppress(BaseException):
                await self._task
        if not self._close_sent:
            await self._send_close(send)
        # The socket keeps its place until it is really done writing: a client that
        # never reads holds at most its user's cap of sockets.
        if self._holding:
            self._holding = False
            assert self.who is not None
            self.hub.release(self.who.user)
        self.hub.socket_closed(self)

    # -- a parked socket (``wspark.py``) ---------------------------------------------------
    async def on_message(self, raw: str | bytes) -> None:
        """One message of a parked socket, in its own task; then, if replies pile up,
        the wait for them to go out before the next message is read."""
        try:
            await self._message(raw)
            if self.control_bytes > CONTROL_PAUSE_BYTES and self.closing is None \
                    and not await self._drain():
                self._unread()
        except _Close as c:
            self._close(c.code, c.reason)
        except Exception:
            log.exception("websocket message failed")
            self._close(1011, "internal error")

    def client_closed(self) -> None:
        """The client closed (or broke the protocol, or stopped answering pings): the
        protocol answered; nothing more is written."""
        if self.closing is None:
            self.closing = _Close(1000)
        self._close_sent = True
        self._drop_subs()
        if self._drained is not None:
            self._drained.set()

    def ended(self) -> None:
        """The parked socket's connection is gone: it leaves the hub and its place."""
        if self.done:
            return
        self.client_closed()
        self.done = True
        self.control.clear()
        if self.expires is not None:
            self.hub.expiries.discard(self)
        if self._holding:
            self._holding = False
            assert self.who is not None
            self.hub.release(self.who.user)
        self.hub.socket_closed(self)

    def _drop_subs(self) -> None:
        for sub in list(self.subs.values()):
            self._unregister(sub.conn)
        self.subs.clear()

    def expire(self) -> None:
        """The token expired (``Expiries``)."""
        self.expires = None
        self._close(CLOSE_EXPIRED, "token expired")

    def shutdown(self) -> None:
        """The server is stopping (``Hub.close_streams``): 1001 for a socket following
        streams (its subscriptions' own end says the same), and for one following none
        the 1012 uvicorn's shutdown gave it before sockets were parked."""
        if self.subs:
            self._close(CLOSE_SHUTDOWN, "server shutting down")
        else:
            self._close(CLOSE_RESTART)

    def _park(self, send: Send) -> bool:
        """Take the socket off uvicorn when it is between messages (``wspark.py``)."""
        if self.sock is None or self.closing is not None:
            return False
        parked = take_over(send, self, MAX_MESSAGE_BYTES, self.hub)
        if parked is None:
            return False
        self.sock = self.parked = parked
        # uvicorn's ``send`` would keep its protocol (the websockets parser, the request's
        # headers: ~7 KB) alive for nothing: a parked session writes through ``parked``
        self._send = _parked_send
        for sub in self.subs.values():
            sub.conn.direct = parked
        return True

    def _hold(self) -> None:
        if not self._holding and self._registered == 0 and self.who is not None \
                and not self.done:
            self._holding = True
            self.hub.hold(self.who.user)

    def _register(self, conn: JsonConnection, signals: bool) -> None:
        if self._holding:  # the first subscription takes over the socket's place
            self._holding = False
            self.hub.release(conn.owner)
        self.hub.register(conn, signals=signals)
        self._registered += 1

    def _unregister(self, conn: JsonConnection) -> None:
        """The last subscription gives its place back to the socket (never a new place:
        one stream leaves as the socket's place is held)."""
        self.hub.unregister(conn)
        self._registered -= 1
        self._hold()

    async def _first_auth(self, receive: Receive) -> None:
        try:
            async with asyncio.timeout(AUTH_TIMEOUT_S):
                message = await receive()
        except TimeoutError:
            raise _Close(CLOSE_EXPIRED, "no credentials: send {\"op\": \"auth\", "
                         "\"token\": ...} first") from None
        if message["type"] == "websocket.disconnect":
            raise _Close(1000)
        raw = message.get("text")
        op = self._parse(message.get("bytes") or b"" if raw is None else raw)
        if op.get("op") != "auth":
            raise _Close(CLOSE_EXPIRED, "the first message must be {\"op\": \"auth\"}")
        self._auth(op)

    def _auth(self, op: dict[str, Any]) -> None:
        token = op.get("token")
        if not isinstance(token, str) or not token:
            raise _Close(CLOSE_BAD_MESSAGE, "'token' must be a string")
        try:
            who = self.authenticate(token)
        except TocsinError as err:
            raise _Close(close_code(err), err.message) from None
        if not isinstance(who, Subscriber):
            raise _Close(CLOSE_REFUSED, "a subscriber token is required")
        if self.who is not None and who.user != self.who.user:
            raise _Close(CLOSE_REFUSED, "a refreshed token must be for the same user")
        self.who = who
        expires = None if who.expires_at is None else int(who.expires_at * 1000)
        self._reply({"op": "authenticated", "user": who.user, "expiresAt": expires})
        self._recheck_topics(who)

    def _recheck_topics(self, who: Subscriber) -> None:
        """A refreshed token may allow fewer topics: each subscription it does not allow
        ends, with an error frame naming it (as a subscribe with that token would be
        refused, and REST answers 403)."""
        for label, sub in list(self.subs.items()):
            if not label.startswith("topic:"):
                continue  # the inbox: the same user
            try:
                check_topic(label[6:], who)
            except TocsinError as err:
                del self.subs[label]
                self._unregister(sub.conn)
                self._reply(error_frame(err, label))

    def _schedule_expiry(self) -> None:
        if self.who is not None and self.who.expires_at is not None:
            self.hub.expiries.add(self, self.who.expires_at)
        elif self.expires is not None:
            self.hub.expiries.discard(self)

    def _parse(self, raw: str | bytes) -> dict[str, Any]:
        if len(raw) > MAX_MESSAGE_BYTES:
            raise _Close(CLOSE_POLICY, "message too large")
        try:
            op = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise _Close(CLOSE_BAD_MESSAGE, "messages must be JSON objects") from None
        if not isinstance(op, dict):
            raise _Close(CLOSE_BAD_MESSAGE, "messages must be JSON objects")
        return op

    async def _read(self, receive: Receive, send: Send) -> None:
        """Messages through ASGI until the socket can be parked."""
        while self.closing is None:
            if self.control_bytes > CONTROL_PAUSE_BYTES:
                if not await self._drain():
                    self._unread()
                    return
                continue
            if self._park(send):
                return  # the request task ends; the socket lives on (``wspark.py``)
            message = await receive()
            if message["type"] == "websocket.disconnect":
                self.closing = _Close(1000)
                return
            raw = message.get("text")
            await self._message(message.get("bytes") or b"" if raw is None else raw)

    async def _message(self, raw: str | bytes) -> None:
        """One client message (raises ``_Close``)."""
        op = self._parse(raw)
        kind = op.get("op")
        if kind not in ("subscribe", "unsubscribe", "ping", "auth"):
            raise _Close(CLOSE_BAD_MESSAGE, f"unknown op {str(kind)[:40]!r}")
        label = op.get("stream") if kind in ("subscribe", "unsubscribe") else None
        if label is not None and not isinstance(label, str):
            raise _Close(CLOSE_BAD_MESSAGE, "'stream' must be a string")
        # Every message spends a read token (--rate-reads), as a subscribe always did:
        # each one makes the server write a reply. A refused one changes nothing.
        assert self.who is not None
        try:
            await self.rate(self.who)
        except TocsinError as err:
            self._reply(error_frame(err, label))
            return
        if self.closing is not None:
            return
        if kind == "subscribe":
            await self._subscribe(op)
        elif kind == "unsubscribe":
            sub = self.subs.pop(label, None) if label is not None else None
            if sub is not None:
                self._unregister(sub.conn)
            self._reply({"op": "unsubscribed", "stream": label})
        elif kind == "ping":
            self._reply({"op": "pong"})
        else:
            self._auth(op)
            self._schedule_expiry()

    async def _drain(self) -> bool:
        """Wait (without reading) until the writer has sent the replies down to
        ``CONTROL_PAUSE_BYTES``; ``False`` if the client did not take them in time."""
        if self._drained is None:
            self._drained = LightEvent(False)
        try:
            async with asyncio.timeout(DRAIN_TIMEOUT_S):
                while self.control_bytes > CONTROL_PAUSE_BYTES and self.closing is None:
                    self._drained.clear()
                    await self._drained.wait()
        except TimeoutError:
            return False
        return True

    def _unread(self) -> None:
        self.control.clear()
        self.hub.counters.unread_closes += 1
        self._close(CLOSE_POLICY, "the client does not read its replies")

    def _reply(self, body: dict[str, Any] | bytes) -> None:
        """Queue a control reply, or close a socket whose client lets them pile up."""
        if self.closing is not None:
            return
        frame = body if isinstance(body, bytes) else orjson.dumps(body)
        if self.control_bytes + len(frame) > MAX_CONTROL_BYTES:
            self._unread()
            return
        self.control.append(frame)
        self.control_bytes += len(frame)
        self._kick()

    async def _subscribe(self, op: dict[str, Any]) -> None:
        label = op.get("stream")
        since = op.get("since")
        signals = op.get("presence", False)
        if not isinstance(label, str) or (since is not None and not isinstance(since, str)):
            raise _Close(CLOSE_BAD_MESSAGE, "'stream' must be a string and 'since' an event id")
        if not isinstance(signals, bool):
            raise _Close(CLOSE_BAD_MESSAGE, "'presence' must be true or false")
        who = self.who
        assert who is not None
        try:
            if label == "inbox":
                stream = user_stream(who.user)
            elif label.startswith("topic:"):
                topic = label[6:]
                check_topic(topic, who)
                stream = topic_stream(topic)
            else:
                raise TocsinError("invalid_field", "'stream' is 'inbox' or 'topic:<name>'.",
                                  "stream")
            # Re-subscribing replaces a subscription, and the first one takes over the
            # socket's own place: neither adds a stream. Any refusal leaves the existing
            # subscription as it was.
            old = self.subs.get(label)
            if old is None and not self._holding:
                self.hub.check_cap(who.user, self.max_open)
        except TocsinError as err:
            self._reply(error_frame(err, label))
            return
        if old is not None:
            del self.subs[label]
            self._unregister(old.conn)
        last: Position | None = None
        if since is not None and since.strip():
            try:
                last = parse_position(since)
            except ValueError:
                last = NEVER_ISSUED
        conn = JsonConnection(stream, who.user, self.hub.counters, self._kick)
        # before reading the head: nothing published is missed
        self._register(conn, signals)
        follower = Follower(self.hub, conn)
        try:
            placed = await follower.position(last, self.hub.known_head(stream))
        except BaseException:  # cancelled (or a bug): never leave it registered
            self._unregister(conn)
            raise
        if not placed or self.closing is not None:
            self._unregister(conn)
            return
        if conn.closed:  # the server is shutting down
            self._unregister(conn)
            raise _Close(CLOSE_SHUTDOWN, "server shutting down")
        # The ack first, then the subscription's frames (a reset included).
        self._reply({"op": "subscribed", "stream": label,
                     "position": event_id(conn.epoch, conn.last_seq)})
        if self.sock is not None:  # only now: nothing of the stream goes before its ack
            conn.direct = self.parked or self._direct
        self.subs[label] = _Sub(label, conn, follower)

    def _close(self, code: int, reason: str = "") -> None:
        if self.closing is None:
            self.closing = _Close(code, reason)
        self._kick()  # the writer sends the close (the reader may be waiting on the client)
        if self._drained is not None:
            self._drained.set()

    # -- the writer: a task only while there is something to write ----------------------
    def _kick(self) -> None:
        """There are frames, replies, a catch-up read or the close to write: start the
        writer unless it runs (it re-checks everything before it ends). An idle socket
        holds no writer task (measured: its task, coroutine and wake-up event were
        ~3 KB of an idle socket)."""
        if self._task is None and self._send is not None and not self._close_sent:
            self._task = asyncio.get_running_loop().create_task(self._writer(self._send))

    def _direct(self, payload: bytes) -> bool:
        """``Connection.direct`` of each subscription: a live frame straight to the
        socket, framed once per event for every socket (``ws_text_frame``), when nothing
        is queued ahead of it on this socket (replies first: an ack precedes its
        stream's frames) and the socket is ready; else ``False`` and the writer sends it."""
        sock = self.sock
        if self.control or self.closing is not None or not isinstance(sock, WsSocket):
            return False  # (a parked socket is its subscriptions' direct writer itself)
        # ``WsSocket.ready`` inlined: this runs once per socket per broadcast event
        # (profiled: the call and the protocol's ``state`` property were ~17 % of a
        # fan-out's CPU, the socket write ~50 %)
        proto, transport = sock.proto, sock.transport
        if proto.close_sent or not proto.writable.is_set() or transport.is_closing():
            return False
        transport.write(ws_text_frame(payload))
        return True

    async def _writer(self, send: Send) -> None:
        try:
            await self._write_loop(send)
        except OSError:
            self._close(1000)  # the client went away mid-write (the reader may be waiting)
        except Exception:  # never leave the reader waiting on a dead writer
            log.exception("websocket writer failed")
            self._close(1011, "internal error")
        if self.closing is None:
            self._task = None  # idle (no await since the loop's last checks)
        elif not self._close_sent:
            # the task stays set until the close is written: the reader waits for it, and
            # the socket keeps its place under the cap until then
            await self._send_close(send)

    async def _send_close(self, send: Send) -> None:
        self._close_sent = True
        closing = self.closing or _Close(CLOSE_POLICY)
        if self.parked is not None:
            # nothing more is queued for a closing socket: its subscriptions leave the hub
            self._drop_subs()
            self.parked.send_close(closing.code, closing.reason[:120])
            return
        with contextlib.suppress(Exception):
            await send({"type": "websocket.close", "code": closing.code,
                        "reason": closing.reason[:120]})

    async def _send_frames(self, send: Send, frames: list[bytes]) -> None:
        """Frames in order: straight to the socket under uvicorn (one write), else one
        ASGI ``send`` each (also when the socket is closing: uvicorn's ``send`` knows
        what a closed or closing socket allows)."""
        while (sock := self.sock) is not None:
            await sock.writable()
            if self.sock is not sock:
                continue  # parked meanwhile: the new protocol writes it
            if sock.ready():
                sock.write(frames)
                return
            if self.parked is not None:
                return  # closing or gone: nothing more goes out
            break
        for f in frames:
            await send({"type": "websocket.send", "text": f.decode()})

    async def _write_loop(self, send: Send) -> None:
        while self.closing is None:
            if self.control:
                if self.sock is not None:
                    await self.sock.writable()  # taken only when it can go at once
                    if self.closing is not None:
                        return
                frames, self.control = self.control, []
                await self._send_frames(send, frames)
                self.control_bytes -= sum(len(f) for f in frames)  # counted until written
                if self._drained is not None:
                    self._drained.set()
                if self.closing is not None:
                    return
            busy = False
            for sub in list(self.subs.values()):
                conn = sub.conn
                if conn.closed:
                    if self.hub.closing:
                        self._close(CLOSE_SHUTDOWN, "server shutting down")
                        return
                    continue
                if conn.outbox:
                    if self.sock is not None:
                        await self.sock.writable()
                        if self.closing is not None:
                            return
                        if not conn.outbox:
                            continue
                    frames = conn.outbox[:]
                    conn.take()
                    conn.sending = True
                    try:
                        await self._send_frames(send, frames)
                    finally:
                        conn.sending = False
                    busy = True
                elif sub.follower.busy and self.subs.get(sub.label) is sub:
                    await sub.follower.step()
                    busy = True
            if not busy and not self.control:
                return  # idle: no task until the next ``_kick`` (no await since the checks)
