"""Writing SSE chunks straight to the socket, skipping a task wake-up per event.

Measured reason (ARCHITECTURE.md, "Performance decisions"): on a broadcast, waking each connection's
writer task and going through ASGI ``send`` costs several times what the socket
write itself costs, so the hub writes the frame directly when it safely can:
- only under uvicorn's httptools protocol, whose ASGI ``send`` is a bound method
  of the request cycle exposing ``transport``, ``flow`` and ``chunked_encoding``
  (detected, never assumed: any other server gets ``None`` and the ASGI path);
- only when the transport is not paused for backpressure and the client is there;
- only when nothing is queued or being sent by the writer task (order is kept).
Callers pass bytes already framed as an HTTP/1.1 chunk (``events.chunked``), the
same framing uvicorn writes for ``more_body`` messages; an event is framed once and
the same bytes go to every connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

DirectWrite = Callable[[bytes], bool]
"""Write one frame; ``False`` (nothing written) when the socket is not ready. An SSE
connection passes its frame already framed as an HTTP/1.1 chunk; a JSON one
(``Connection.json``: a WebSocket subscription) its JSON payload, which the writer frames
(``ws_text_frame``)."""


def direct_writer(send: Any) -> DirectWrite | None:
    cycle: Any = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    flow = getattr(cycle, "flow", None)
    if transport is None or flow is None or getattr(cycle, "chunked_encoding", None) is not True:
        return None

    return _DirectWrite(cycle, flow, transport)


class _DirectWrite:
    __slots__ = ("cycle", "flow", "transport")  # lighter than a closure (per stream)

    def __init__(self, cycle: Any, flow: Any, transport: Any) -> None:
        self.cycle, self.flow, self.transport = cycle, flow, transport

    def __call__(self, chunk: bytes) -> bool:
        cycle = self.cycle
        if self.flow.write_paused or cycle.disconnected or cycle.response_complete:
            return False
        self.transport.write(chunk)
        return True



Drain = Callable[[Callable[[], Awaitable[None]]], Awaitable[None]]
"""``drain(until)``: wait until the socket's write buffer is below its high-water mark,
the client left, or ``until()`` returns (the stream is closing)."""


def drainer(send: Any) -> Drain | None:
    """Backpressure for the catch-up path under uvicorn (``None`` elsewhere: the ASGI
    ``send`` of other servers applies its own). The writer waits on it before reading
    the store, so a client that does not read costs one outbox, not a replay."""
    cycle: Any = getattr(send, "__self__", None)
    flow = getattr(cycle, "flow", None)
    if flow is None or not hasattr(flow, "drain") or not hasattr(flow, "write_paused"):
        return None

    async def drain(until: Callable[[], Awaitable[None]]) -> None:
        if not flow.write_paused or cycle.disconnected:
            return
        waits = (asyncio.ensure_future(flow.drain()), asyncio.ensure_future(until()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    return drain


class LightEvent:
    """Stands in for one of uvicorn's per-request ``asyncio.Event``s on a stream: the
    same ``is_set``/``set``/``clear``/``wait``, but no waiter deque until someone waits
    (an ``asyncio.Event`` allocates a ~750-byte deque up front), and ``set`` may call
    back. Measured (ARCHITECTURE.md, "Performance decisions"): with the watcher task it
    replaces, ~3 KB of the ~18 KB an idle stream cost."""

    __slots__ = ("_flag", "_future", "_on_set")

    def __init__(self, flag: bool, on_set: Callable[[], None] | None = None) -> None:
        self._flag = flag
        self._future: asyncio.Future[None] | None = None
        self._on_set = on_set

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        self._flag = True
        fut, self._future = self._future, None
        if fut is not None and not fut.done():
            fut.set_result(None)
        if self._on_set is not None:
            self._on_set()

    def clear(self) -> None:
        self._flag = False

    async def wait(self) -> bool:
        if self._flag:
            return True
        if self._future is None:
            self._future = asyncio.get_running_loop().create_future()
        # shielded: one cancelled waiter must not cancel the future others share
        await asyncio.shield(self._future)
        return True


def watch_disconnect(send: Any, on_disconnect: Callable[[], None]) -> bool:
    """Under uvicorn's httptools protocol, call ``on_disconnect`` when the client goes
    away without a task blocked in ``receive()`` per stream: uvicorn's
    ``connection_lost`` marks the cycle disconnected and sets its ``message_event``,
    which becomes a :class:`LightEvent` calling back (the flow control's writable
    event becomes one too). ``False`` (nothing changed) under any other server: the
    caller watches ``receive()`` instead."""
    cycle: Any = getattr(send, "__self__", None)
    flow: Any = getattr(cycle, "flow", None)
    event = getattr(cycle, "message_event", None)
    writable = getattr(flow, "_is_writable_event", None)
    if not isinstance(event, asyncio.Event) or not hasattr(cycle, "disconnected") \
            or not isinstance(writable, asyncio.Event | LightEvent):
        return False
    if cycle.disconnected:
        on_disconnect()
        return True
    cycle.message_event = LightEvent(event.is_set(), _DisconnectCheck(cycle, on_disconnect))
    if isinstance(writable, asyncio.Event):
        flow._is_writable_event = LightEvent(writable.is_set())
    return True


class _DisconnectCheck:
    __slots__ = ("cycle", "on_disconnect")  # a closure costs a function and its cells

    def __init__(self, cycle: Any, on_disconnect: Callable[[], None]) -> None:
        self.cycle, self.on_disconnect = cycle, on_disconnect

    def __call__(self) -> None:
        if self.cycle.disconnected:
            self.on_disconnect()


# -- WebSocket: frames written straight to the socket -------------------------------------
def ws_text_frame(payload: bytes) -> bytes:
    """``payload`` as one unfragmented, unmasked text frame (RFC 6455 5.2: a server
    never masks, so the bytes are the same for every client). Built once per event:
    the last payload framed is remembered, and a broadcast hands the same payload object
    (``StreamEvent.json_frame``) to every socket in a row."""
    global _last_payload, _last_frame
    if payload is _last_payload:
        return _last_frame
    n = len(payload)
    if n < 126:
        head = bytes((0x81, n))
    elif n < 65536:
        head = bytes((0x81, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x81, 127)) + n.to_bytes(8, "big")
    framed = head + payload
    _last_payload, _last_frame = payload, framed
    return framed


_last_payload: bytes | None = None
_last_frame = b""


class WsSocket:
    """The socket under uvicorn's sans-I/O WebSocket protocol (``send.__self__``: the
    websockets library's ``ServerProtocol`` as ``conn``, the transport, the ``writable``
    flow-control event and ``close_sent``), detected like :func:`direct_writer`, never
    assumed: ``None`` from :meth:`of` under any other server or protocol, and the
    session keeps writing through ASGI ``send``."""

    __slots__ = ("proto", "transport")

    def __init__(self, proto: Any, transport: Any) -> None:
        self.proto, self.transport = proto, transport

    @classmethod
    def of(cls, send: Any) -> WsSocket | None:
        proto: Any = getattr(send, "__self__", None)
        transport = getattr(proto, "transport", None)
        if transport is None or not hasattr(proto, "close_sent") \
                or not isinstance(getattr(proto, "writable", None), asyncio.Event | LightEvent) \
                or not getattr(proto, "handshake_complete", False):
            return None
        return cls(proto, transport)

    def ready(self) -> bool:
        """Open both ways, and not paused for backpressure: a write now goes out in
        order with everything before it (nothing is buffered on the way but the
        transport's own buffer)."""
        proto = self.proto
        # The websockets state needs no check of its own: every way out of OPEN (a close
        # received or sent, a protocol error, a keepalive timeout) sets ``close_sent`` or
        # closes the transport in the same callback, before any other code runs.
        return (proto.writable.is_set() and not proto.close_sent
                and not self.transport.is_closing())

    def write(self, payloads: list[bytes]) -> None:
        self.transport.write(b"".join([ws_text_frame(p) for p in payloads]))

    async def writable(self) -> None:
        """Until the transport is below its high-water mark (or the client left)."""
        await self.proto.writable.wait()

