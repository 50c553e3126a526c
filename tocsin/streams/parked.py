"""Idle SSE streams parked off the ASGI server: the socket, the connection and a
small protocol object, nothing else.

Measured reason (ARCHITECTURE.md, "Performance decisions"): an idle stream under
uvicorn keeps its request task (a chain of six coroutines), the HTTP protocol, its
parser with a bound method per callback, the request cycle, the scope and headers,
flow control — about 15 KB of Python objects a stream, where the socket alone costs
under 1 KB. Once a stream has caught up and has nothing to send, :func:`park` hands
its socket to a :class:`Parked` protocol and lets the request task end:
- live events and heartbeats are already written straight to the socket
  (``direct.py``); a parked stream is its own direct writer;
- anything that needs the writer (a catch-up read, backpressure, a reset, closing)
  wakes the connection, which starts a short-lived task running the same steps as
  the endpoint's writer, until the stream is idle again or closed;
- the end of a parked stream is written here (the last chunk), then the socket is
  closed: SSE clients open a new connection to resume anyway.

Only under uvicorn's httptools protocol, detected like ``direct.py`` (never
assumed): any other server keeps the plain ASGI path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from tocsin.sse import chunked
from tocsin.streams.direct import LightEvent

if TYPE_CHECKING:
    from tocsin.streams.connection import Connection
    from tocsin.streams.follow import Follower
    from tocsin.streams.hub import Hub

log = logging.getLogger("tocsin.streams")
LAST_CHUNK = b"0\r\n\r\n"


class Parked(asyncio.Protocol):
    """The protocol of a parked stream's socket, and its direct writer."""

    __slots__ = ("_done", "_drained", "_ending", "_task", "conn", "follower", "hub",
                 "paused", "transport")

    def __init__(self, hub: Hub, conn: Connection, follower: Follower,
                 transport: Any) -> None:
        self.hub = hub
        self.conn = conn
        self.follower = follower
        self.transport = transport
        self.paused = False
        self._done = False
        self._ending = False
        self._task: asyncio.Task[None] | None = None
        self._drained: asyncio.Future[None] | None = None

    # -- the socket ------------------------------------------------------------------
    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.close()

    def eof_received(self) -> bool:
        self.conn.close()  # the client half-closed: it is leaving
        return False

    def data_received(self, data: bytes) -> None:
        pass  # a stream's client has nothing more to say; dropped, never buffered

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._release()

    # -- direct writes (``Connection.direct``) ---------------------------------------
    def __call__(self, chunk: bytes) -> bool:
        if self.paused or self._done or self.transport.is_closing():
            return False
        self.transport.write(chunk)
        return True

    # -- the writer, on demand -------------------------------------------------------
    def wake(self) -> None:
        """``Connection.on_wake``: there are frames, a fetch or the end to write.
        What needs no waiting is done here and now (measured: a task per closing
        stream was 14 % of a 10k reconnect storm's CPU); a task only for the rest."""
        if self._task is not None:
            self._release()  # a writer waiting for the socket re-checks (e.g. closing)
            return
        if self._done:
            return
        conn = self.conn
        if conn.closed or self.transport.is_closing():
            conn.closed = True
            if not self._ending:
                # soon, not now: the caller may be iterating the hub's streams
                self._ending = True
                asyncio.get_running_loop().call_soon(self._finish)
            return
        if conn.outbox and not self.paused:
            self.transport.write(chunked(conn.take()))
        if conn.outbox or self.follower.busy:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def _release(self) -> None:
        d, self._drained = self._drained, None
        if d is not None and not d.done():
            d.set_result(None)

    async def _drain(self) -> None:
        self._drained = asyncio.get_running_loop().create_future()
        await self._drained

    async def _run(self) -> None:
        conn, follower = self.conn, self.follower
        try:
            while not conn.closed:
                if conn.outbox:
                    if self.paused:
                        await self._drain()
                        continue
                    self.transport.write(chunked(conn.take()))
                elif follower.busy:
                    if conn.fetching and not conn.stale and self.paused:
                        # what was sent must leave before more is read (endpoint.py)
                        await self._drain()
                        continue
                    await follower.step()
                else:
                    self._task = None  # idle again: parked (no await since the check)
                    return
        except Exception as exc:  # the store failing mid-read: end, the client resumes
            log.warning("parked stream %s ended: %r", conn.stream, exc)
            conn.close()
        self._task = None
        self._finish()

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        self.hub.unregister(self.conn)  # its expiry too
        # The connection and this protocol point at each other (its direct writer and
        # waker): unlinked, refcounting frees both with the transport. Measured (a 10k
        # reconnect storm, ``gc.callbacks``): otherwise every closed stream waits in the
        # oldest generation, and the full collections that free them were most of the
        # storm's garbage-collection CPU, each stopping the event loop.
        self.conn.direct = None
        self.conn.on_wake = None
        transport = self.transport
        if not transport.is_closing():
            with contextlib.suppress(OSError, RuntimeError):
                if self.conn.outbox:  # e.g. ``expired`` or a reset queued at the end
                    transport.write(chunked(self.conn.take()))
                transport.write(LAST_CHUNK)
            transport.close()


class UvicornSocket:
    """A request's socket that uvicorn would let go of before its response started (see
    :func:`unstarted_socket`): where a stream can open parked from its request task."""

    __slots__ = ("cycle", "default_headers", "proto", "transport")

    def __init__(self, cycle: Any, proto: Any, transport: Any) -> None:
        self.cycle, self.proto, self.transport = cycle, proto, transport
        self.default_headers = cycle.default_headers

    def release(self) -> None:
        """uvicorn forgets the connection, as in :func:`park` (the request task ends
        without a response of its own: the stream wrote it)."""
        self.proto.connections.discard(self.proto)
        self.cycle.disconnected = True
        _let_go(self.proto, self.cycle)


def unstarted_socket(send: Any) -> UvicornSocket | None:
    """The socket under uvicorn's httptools ``send`` when nothing was written on this
    request yet and nothing else is queued on the connection; ``None`` otherwise
    (another server, a pipelined request, HTTP/1.0, a paused or closing socket)."""
    cycle: Any = getattr(send, "__self__", None)
    transport: Any = getattr(cycle, "transport", None)
    flow: Any = getattr(cycle, "flow", None)
    if transport is None or flow is None or not hasattr(cycle, "default_headers") \
            or cycle.disconnected or cycle.response_started or flow.write_paused \
            or transport.is_closing() or cycle.scope.get("http_version") != "1.1":
        return None
    proto = transport.get_protocol()
    if not isinstance(getattr(proto, "connections", None), set) \
            or getattr(proto, "cycle", None) is not cycle or getattr(proto, "pipeline", True):
        return None
    return UvicornSocket(cycle, proto, transport)


def park(send: Any, hub: Hub, conn: Connection, follower: Follower) -> bool:
    """Take the stream off uvicorn (see the module's doc); ``False`` (nothing changed)
    when this server or this moment does not allow it: the caller keeps writing."""
    cycle: Any = getattr(send, "__self__", None)
    transport: Any = getattr(cycle, "transport", None)
    flow: Any = getattr(cycle, "flow", None)
    if transport is None or flow is None \
            or not isinstance(getattr(cycle, "message_event", None), LightEvent) \
            or cycle.disconnected or cycle.response_complete or flow.write_paused \
            or cycle.chunked_encoding is not True or transport.is_closing():
        return False
    proto = transport.get_protocol()
    connections = getattr(proto, "connections", None)
    if not isinstance(connections, set) or getattr(proto, "cycle", None) != cycle:
        return False
    attach(hub, conn, follower, transport)
    # uvicorn forgets the connection (its shutdown and limits count live requests;
    # the hub ends parked streams) and, seeing the cycle "disconnected", lets the
    # request task end without closing the socket
    connections.discard(proto)
    cycle.disconnected = True
    _let_go(proto, cycle)
    return True


def _let_go(proto: Any, cycle: Any) -> None:
    """Break the reference cycles of a request uvicorn will never call back (the
    transport has another protocol), so refcounting frees its protocol and cycle once
    the request task ends, not a full collection (see ``Parked._finish``): the parser
    holds the protocol's bound callbacks, and the cycle's disconnect check (``direct.py:
    watch_disconnect``) the cycle."""
    if hasattr(proto, "parser"):
        proto.parser = None
    if isinstance(getattr(cycle, "message_event", None), LightEvent):
        cycle.message_event = LightEvent(True)


def attach(hub: Hub, conn: Connection, follower: Follower, transport: Any) -> Parked:
    """Give the socket to a :class:`Parked` protocol, which becomes the connection's
    writer (``park`` and ``EventStream.open_parked``)."""
    parked = Parked(hub, conn, follower, transport)
    transport.set_protocol(parked)
    conn.direct = parked
    conn.on_wake = parked.wake
    return parked
