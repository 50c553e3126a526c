"""Issue 26, the WebSocket rows: an idle socket holds no writer task, and a live event
reaches every socket straight from the hub, one frame built once for all of them
(``streams/direct.py: ws_text_frame``; the figures are the benchmark's, ``bench.ab
--rows ws-idle,ws-fanout1k``). In process, under the same uvicorn protocol ``tocsin
serve`` runs (``server.py: uvicorn_config``), so the tasks can be counted."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect

from tests.support.server import API_KEY, JWT_SECRET, mint
from tocsin.app import create_app
from tocsin.config import Settings
from tocsin.server import uvicorn_config
from tocsin.streams.direct import ws_text_frame

SOCKETS = 5


def writer_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks()
            if getattr(t.get_coro(), "__qualname__", "") == "WebSocketSession._writer"]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'tocsin.db'}",
                        api_keys=[API_KEY], jwt_secret=JWT_SECRET, host="127.0.0.1",
                        port=port, log_level="warning")
    srv = uvicorn.Server(uvicorn_config(settings, create_app(settings)))
    task = asyncio.create_task(srv.serve())
    while not srv.started:
        await asyncio.sleep(0.02)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        await asyncio.wait_for(task, 30)


async def subscribed(addr: str, user: str) -> ClientConnection:
    ws = await connect(f"ws://{addr}/api/ws?token={mint(user)}", compression=None)
    await ws.send('{"op":"subscribe","stream":"inbox"}')
    reply = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
    assert reply["op"] == "subscribed", reply
    return ws


async def test_idle_sockets_hold_no_writer_task_and_events_go_straight_out(
        server: str) -> None:
    users = [f"idle{i}" for i in range(SOCKETS)]
    sockets = [await subscribed(server, u) for u in users]
    try:
        await asyncio.sleep(0.1)  # the subscribe's writer is done with the ack
        assert writer_tasks() == []  # the old session kept one per socket, always
        async with httpx.AsyncClient(base_url=f"http://{server}",
                                     headers={"Authorization": f"Bearer {API_KEY}"}) as c:
            r = await c.post("/api/notifications",
                             json={"recipients": users, "type": "comment", "title": "hello"})
            assert r.status_code in (200, 201, 202), r.text
        frames = [orjson.loads(await asyncio.wait_for(ws.recv(), 10)) for ws in sockets]
        assert {f["stream"] for f in frames} == {"inbox"}
        assert all(f["event"] == "notification" for f in frames), frames
        assert writer_tasks() == []  # written by the hub itself: no task was woken
    finally:
        for ws in sockets:
            await ws.close()


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 70000])
def test_a_frame_is_one_unmasked_text_frame_the_client_reads(size: int) -> None:
    from websockets.client import ClientProtocol
    from websockets.frames import Opcode
    from websockets.protocol import State
    from websockets.uri import parse_uri

    payload = b"x" * size
    client = ClientProtocol(parse_uri("ws://x/"), max_size=None, state=State.OPEN)
    client.receive_data(ws_text_frame(payload))
    [frame] = client.events_received()
    assert (frame.opcode, frame.fin, bytes(frame.data)) == (Opcode.TEXT, True, payload)
    assert ws_text_frame(payload) is ws_text_frame(payload)  # built once, shared
