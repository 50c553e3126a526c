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

    def write(chunk: bytes) -> bool:
        if flow.write_paused or cycle.disconnected or cycle.response_complete:
            return False
        transport.write(chunk)
        return True

    return write



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
