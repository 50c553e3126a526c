"""The scale-out row at a tiny size, and the Socket.IO client's WebSocket pong.

Not a timed test: it checks that the row holds, broadcasts and counts.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bench import scale
from bench.loadgen import SIOClient, Spec, ws_frame
from bench.systems import port_open


class _Transport:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.sent.append(data)

    def abort(self) -> None:
        pass


class _Worker:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.host = "127.0.0.1"
        self.errors: list[str] = []


def test_sio_client_pongs_websocket_pings() -> None:
    """uvicorn closes a WebSocket whose protocol ping gets no pong within 20 s (1011):
    the Socket.IO client must answer, as browsers and socketio.AsyncClient do."""
    loop = asyncio.new_event_loop()
    try:
        w: Any = _Worker(loop)
        c = SIOClient(w, Spec("k", "/socket.io/?topic=t", "sio"))
        t = _Transport()
        c.connection_made(t)  # type: ignore[arg-type]
        t.sent.clear()
        ping = bytes((0x89, 4)) + b"abcd"
        c.data_received(b"HTTP/1.1 101 Switching Protocols\r\n\r\n" + ping)
        assert t.sent == [ws_frame(b"abcd", 10)]
    finally:
        loop.close()


def test_scale_row_tiny() -> None:
    systems: tuple[str, ...] = ("floor", "tocsin") if port_open("127.0.0.1", 6379) else (
        "floor",)
    sc = scale.scale_run(300, hold_s=1.0, systems=systems)
    for name in systems:
        res = sc[name]
        assert "error" not in res, res
        assert res["held"] == 300, res
        assert res["dropped_during_hold"] == 0, res
        assert res["received"] == 300 and res["dupes"] == 0, res
        assert res["all_received"], res
        assert res["workers"] == 3
    md = scale.scale_md(sc)
    assert "| 300 |" in md and "300 (" in md
