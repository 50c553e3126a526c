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
"""Write one pre-framed chunk; ``False`` (nothing written) when the socket is not ready."""


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
