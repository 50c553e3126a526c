"""Parked WebSocket sockets: after the handshake, Tocsin's own small protocol on the
socket instead of uvicorn's, and no task while nothing happens.

Measured reason (tracemalloc, 1,000 idle sockets, issue 26): under uvicorn an idle
socket kept its request task (the session's reader, ~2.5 KB of coroutines), uvicorn's
protocol with the websockets library's parser (~5 KB), the scope and headers
(~1.2 KB) and two loop timers (keepalive, token expiry) — ~17 KB of Python objects,
where an SSE stream parked off uvicorn (``parked.py``) costs ~1 KB. Once the session
is authenticated, ``WebSocketSession`` hands the socket to a :class:`ParkedWs`:

- frames are parsed here (``wsframes.py``: the same checks and close codes as
  websockets); a message runs the session's handler in a short task, during which
  nothing more is parsed or read (one message at a time, as under uvicorn); replies
  and live frames are written straight to the transport;
- protocol pings (the server's keepalive, uvicorn's ``--ws-ping-interval`` and
  ``--ws-ping-timeout``) are one round per interval over every parked socket of the
  node (:class:`Keepalive`), not two timers per socket; a socket whose previous ping is
  still unanswered is closed with 1011, as uvicorn's keepalive does;
- a socket whose writes stay backed up for ``--ws-write-timeout`` is aborted; while
  they are backed up a client's pings are answered once, when they drain, for the
  latest one only (RFC 6455 5.5.3): a client that floods pings and reads nothing gets
  no pongs queued; its messages' replies are bounded by the session
  (``ws.py: CONTROL_PAUSE_BYTES``, ``MAX_CONTROL_BYTES``);
- the close handshake: the server's close frame, then the client's answer awaited
  ``CLOSE_TIMEOUT_S`` at most before the socket is closed; a client's close frame is
  echoed and the socket closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from typing import Any, Protocol

from tocsin.streams.direct import ws_text_frame
from tocsin.streams.wsframes import (
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    FrameError,
    FrameReader,
    close_frame,
    control_frame,
    parse_close,
)

log = logging.getLogger("tocsin.ws")

CLOSE_TIMEOUT_S = 10.0
"""How long a closing socket waits for the client's close frame (uvicorn's too)."""
KEEPALIVE_SLICE = 200
"""Sockets pinged per loop turn (``hub.py: HEARTBEAT_SLICE``: a turn writing to 10k
sockets holds the loop for tens of ms)."""
PING = control_frame(OP_PING, b"tcsn")
"""Every keepalive ping: a round's pong is any pong (the client's answer to a ping is
all that is asked of it)."""


class ParkedSession(Protocol):
    """What a parked socket asks of its session (``ws.py: WebSocketSession``)."""

    control: list[bytes]
    closing: Any

    async def on_message(self, raw: str | bytes) -> None: ...

    def client_closed(self) -> None: ...

    def ended(self) -> None: ...


class ParkedWs(asyncio.Protocol):
    """The protocol of a parked WebSocket, and the direct writer of its subscriptions."""

    __slots__ = ("_closer", "_stall", "_task", "_waiter", "close_sent", "closed", "keepalive_of",
                 "owed_pong", "paused", "pinged", "reader", "reading", "session", "transport",
                 "write_timeout_s")

    def __init__(self, session: ParkedSession, transport: Any, max_size: int,
                 write_timeout_s: float) -> None:
        self.session = session
        self.transport = transport
        self.reader = FrameReader(max_size)
        self.write_timeout_s = write_timeout_s
        self.paused = False
        """Writes backed up (above the transport's high-water mark)."""
        self.reading = True
        self.close_sent = False
        """The server's close frame was written, or the socket failed: nothing more is
        written but the answer to a client's close."""
        self.closed = False
        self.pinged = False
        """A keepalive ping is unanswered."""
        self.owed_pong: bytes | None = None
        """The payload of the latest client ping received while writes were backed up."""
        self._task: asyncio.Task[None] | None = None
        """The message being handled, if any."""
        self._waiter: asyncio.Future[None] | None = None
        self._stall: asyncio.TimerHandle | None = None
        self._closer: asyncio.TimerHandle | None = None
        self.keepalive_of: Keepalive | None = None
        """The keepalive rounds this socket is in (it leaves them as it closes)."""

    # -- writing, for the session -----------------------------------------------------
    def __call__(self, payload: bytes) -> bool:
        """``Connection.direct`` of each subscription: one live frame now, when nothing
        is queued ahead of it (the session's replies) and the socket takes writes."""
        if self.paused or self.close_sent or self.closed:
            return False
        session = self.session
        if session.control or session.closing is not None:
            return False
        self.transport.write(ws_text_frame(payload))
        return True

    def ready(self) -> bool:
        return not (self.paused or self.close_sent or self.closed)

    def write(self, payloads: list[bytes]) -> None:
        self.transport.write(b"".join([ws_text_frame(p) for p in payloads]))

    async def writable(self) -> None:
        """Until writes are no longer backed up (or the socket is gone)."""
        if self.paused and not self.closed:
            if self._waiter is None:
                self._waiter = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._waiter)

    def send_close(self, code: int, reason: str) -> None:
        """The server's close frame; the socket closes on the client's answer, or after
        ``CLOSE_TIMEOUT_S``."""
        if self.close_sent or self.closed:
            return
        self.close_sent = True
        self.transport.write(close_frame(code, reason))
        self._closer = asyncio.get_running_loop().call_later(
            CLOSE_TIMEOUT_S, self.transport.close)

    def _fail(self, code: int, reason: str) -> None:
        """Close at once with ``code`` (a protocol error, a dead peer)."""
        if not self.close_sent and not self.closed:
            self.close_sent = True
            with contextlib.suppress(OSError, RuntimeError):
                self.transport.write(close_frame(code, reason))
            self.session.client_closed()
        self.transport.close()

    # -- the socket -------------------------------------------------------------------
    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed:
            return
        self.closed = True
        for timer in (self._stall, self._closer):
            if timer is not None:
                timer.cancel()
        self._stall = self._closer = None
        if self.keepalive_of is not None:
            self.keepalive_of.sockets.discard(self)
            self.keepalive_of = None
        self._release()
        self.session.ended()

    def eof_received(self) -> bool:
        return False  # the client is gone: the transport closes (connection_lost)

    def pause_writing(self) -> None:
        self.paused = True
        if self._stall is None:
            self._stall = asyncio.get_running_loop().call_later(
                self.write_timeout_s, self.transport.abort)  # connection_lost follows

    def resume_writing(self) -> None:
        self.paused = False
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None
        self._release()
        if self.owed_pong is not None:
            if not self.close_sent:
                self.transport.write(control_frame(OP_PONG, self.owed_pong))
            self.owed_pong = None

    def _release(self) -> None:
        w, self._waiter = self._waiter, None
        if w is not None and not w.done():
            w.set_result(None)

    def data_received(self, data: bytes) -> None:
        if not self.closed:
            self.reader.feed(data)
            self._parse()

    def _parse(self) -> None:
        """Handle what was received, as far as allowed: never past a message being
        handled. Reading pauses while a message is."""
        reader, transport = self.reader, self.transport
        while self._task is None and not self.closed:
            try:
                got = reader.next()
            except FrameError as err:
                self._fail(err.code, err.reason)
                return
            if got is None:
                break
            op, payload = got
            if op == OP_PING:
                if self.paused:
                    self.owed_pong = payload  # type: ignore[assignment]
                elif not self.close_sent:
                    transport.write(control_frame(OP_PONG, payload))  # type: ignore[arg-type]
            elif op == OP_PONG:
                self.pinged = False
            elif op == OP_CLOSE:
                self._client_close(payload)  # type: ignore[arg-type]
                return
            elif not self.close_sent:  # past the server's close, messages are dropped
                self._task = asyncio.get_running_loop().create_task(self._handle(payload))
        if self.closed or transport.is_closing():
            return
        hold = self._task is not None
        if hold == self.reading:
            self.reading = not hold
            if hold:
                transport.pause_reading()
            else:
                transport.resume_reading()

    def _client_close(self, payload: bytes) -> None:
        try:
            parse_close(payload)
        except FrameError as err:
            self._fail(err.code, err.reason)
            return
        if not self.close_sent:
            self.close_sent = True
            self.transport.write(control_frame(OP_CLOSE, payload))  # echoed, as websockets
            self.session.client_closed()
        self.transport.close()  # the server closes the TCP connection first (RFC 6455 7.1.1)

    async def _handle(self, raw: str | bytes) -> None:
        try:
            await self.session.on_message(raw)
        finally:
            self._task = None
        self._parse()

    # -- keepalive --------------------------------------------------------------------
    def keepalive(self, fails: bool) -> None:
        """One keepalive round (:class:`Keepalive`): the previous ping unanswered closes
        the socket (``fails``), else a new ping. A socket whose writes are backed up is
        left to the write timeout."""
        if self.close_sent or self.closed or self.paused:
            return
        if self.pinged and fails:
            self._fail(1011, "keepalive ping timeout")
            return
        self.pinged = True
        self.transport.write(PING)


class Keepalive:
    """The node's keepalive pings for parked sockets: one round every ``interval_s``
    (``--ws-ping-interval``) over all of them, in slices; a ping unanswered by the next
    round (``--ws-ping-timeout`` set) closes its socket. A dead peer is dropped between
    one and two intervals after its last answer; a pong costs one attribute write."""

    __slots__ = ("_task", "fails", "interval_s", "sockets")

    def __init__(self, interval_s: float, fails: bool) -> None:
        self.interval_s, self.fails = interval_s, fails
        self.sockets: set[ParkedWs] = set()
        self._task: asyncio.Task[None] | None = None

    def add(self, sock: ParkedWs) -> None:
        self.sockets.add(sock)
        sock.keepalive_of = self
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._rounds())

    async def _rounds(self) -> None:
        while self.sockets:
            await asyncio.sleep(self.interval_s)
            everyone = list(self.sockets)
            for i in range(0, len(everyone), KEEPALIVE_SLICE):
                if i:
                    await asyncio.sleep(0)  # publishes and events go first
                for sock in everyone[i : i + KEEPALIVE_SLICE]:
                    sock.keepalive(self.fails)
        self._task = None


_keepalives: weakref.WeakKeyDictionary[Any, Keepalive] = weakref.WeakKeyDictionary()


def keepalive_for(owner: Any, interval_s: float, fails: bool) -> Keepalive:
    """The keepalive of ``owner`` (the node's hub): one per node and interval."""
    ka = _keepalives.get(owner)
    if ka is None or ka.interval_s != interval_s or ka.fails != fails:
        ka = _keepalives[owner] = Keepalive(interval_s, fails)
    return ka


class _Detached:
    """Stands in for the transport of the uvicorn protocol a socket was taken from: what
    uvicorn still does with it once the request task ends (it closes it) is a no-op."""

    __slots__ = ()

    def close(self) -> None:
        pass

    def is_closing(self) -> bool:
        return True

    def write(self, data: bytes) -> None:
        pass

    def abort(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


DETACHED = _Detached()


def take_over(send: Any, session: ParkedSession, max_size: int,
              node: Any) -> ParkedWs | None:
    """Take the socket under uvicorn's WebSocket protocol (``server.py: limited_ws``,
    recognised by its ``write_timeout_s``; ``send.__self__``) when it is between two
    messages: nothing queued for the application, nothing of a frame parsed or held,
    writes not backed up. ``None`` (nothing changed) otherwise, or under any other
    server: the session keeps reading through ASGI. ``node``: what the keepalive
    rounds are per (the hub)."""
    proto: Any = getattr(send, "__self__", None)
    transport: Any = getattr(proto, "transport", None)
    conn: Any = getattr(proto, "conn", None)
    write_timeout_s = getattr(proto, "write_timeout_s", None)
    if transport is None or conn is None or not isinstance(write_timeout_s, float) \
            or proto.close_sent or proto.disconnected or not proto.handshake_complete \
            or not proto.queue.empty() or proto.backlog or proto.frames \
            or not proto.writable.is_set() or transport.is_closing() \
            or getattr(getattr(conn, "reader", None), "buffer", b"x") \
            or not isinstance(getattr(proto, "connections", None), set):
        return None
    proto.stop_keepalive()
    proto.connections.discard(proto)  # uvicorn's count of live connections
    parked = ParkedWs(session, transport, max_size, write_timeout_s)
    transport.set_protocol(parked)
    if proto.read_paused:
        transport.resume_reading()
    proto.transport = DETACHED
    interval = proto.ping_interval
    if interval is not None and interval > 0:
        keepalive_for(node, interval, proto.ping_timeout is not None).add(parked)
    return parked
