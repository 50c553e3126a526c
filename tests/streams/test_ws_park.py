"""Issue 26: idle WebSocket sockets are parked off uvicorn (``streams/wspark.py``), with
Tocsin's own frame parser (``streams/wsframes.py``). The parser against frames built by
the websockets library; the parked socket in process, under the same uvicorn protocol
``tocsin serve`` runs (``server.py: uvicorn_config``), so its tasks can be counted and
the keepalive made short."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
import uvicorn
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close, Frame, Opcode

from tests.support.server import API_KEY, JWT_SECRET, mint
from tocsin.app import create_app
from tocsin.config import Settings
from tocsin.server import uvicorn_config
from tocsin.streams.wsframes import (
    NO_STATUS,
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_TEXT,
    FrameError,
    FrameReader,
    close_frame,
    parse_close,
)

LIMIT = 16 * 1024


def client(opcode: Opcode, data: bytes, fin: bool = True, rsv1: bool = False) -> bytes:
    """A client's masked frame; ``rsv1`` set by hand (websockets refuses to build it)."""
    frame = Frame(opcode, data, fin=fin).serialize(mask=True)
    return bytes((frame[0] | 0x40,)) + frame[1:] if rsv1 else frame


def read_all(data: bytes, step: int = 0) -> list[tuple[int, bytes | str]]:
    """Everything ``data`` holds, fed at once or ``step`` bytes at a time."""
    r = FrameReader(LIMIT)
    got: list[tuple[int, bytes | str]] = []
    chunks = [data] if not step else [data[i : i + step] for i in range(0, len(data), step)]
    for chunk in chunks:
        r.feed(chunk)
        while (item := r.next()) is not None:
            got.append(item)
    return got


def refused(data: bytes) -> FrameError:
    with pytest.raises(FrameError) as err:
        read_all(data)
    return err.value


@pytest.mark.parametrize("step", [0, 1, 7])
def test_messages_fragments_and_control_frames_in_between(step: int) -> None:
    data = (client(Opcode.TEXT, b'{"op":"ping"}')
            + client(Opcode.TEXT, "h\u00e9".encode()[:2], fin=False)
            + client(Opcode.PING, b"p")
            + client(Opcode.CONT, "h\u00e9".encode()[2:], fin=False)
            + client(Opcode.CONT, b"!")
            + client(Opcode.BINARY, b"\x00" * 300)
            + client(Opcode.TEXT, b"y" * 1000))
    assert read_all(data, step) == [(OP_TEXT, '{"op":"ping"}'), (OP_PING, b"p"),
                                    (OP_TEXT, "h\u00e9!"), (OP_BINARY, b"\x00" * 300),
                                    (OP_TEXT, "y" * 1000)]


def test_protocol_errors_close_with_the_codes_websockets_uses() -> None:
    assert refused(client(Opcode.TEXT, b"{}", rsv1=True)).code == 1002  # no extension
    unmasked = Frame(Opcode.TEXT, b"{}").serialize(mask=False)
    assert refused(unmasked).code == 1002
    assert refused(client(Opcode.CONT, b"x")).code == 1002
    assert refused(client(Opcode.TEXT, b"a", fin=False) + client(Opcode.TEXT, b"b")).code == 1002
    assert refused(bytes((0x83, 0x80)) + b"\x00" * 4).code == 1002  # opcode 3
    assert refused(bytes((0x09, 0x80)) + b"\x00" * 4).code == 1002  # fragmented ping
    assert refused(bytes((0x89, 0xFE, 0, 126)) + b"\x00" * 4).code == 1002  # long ping
    assert refused(client(Opcode.TEXT, b"\xff\xfe")).code == 1007


def test_a_message_over_the_limit_is_refused_on_its_header() -> None:
    header = client(Opcode.TEXT, b" " * (LIMIT + 1))[:8]  # 2 + 2 + mask: no payload yet
    assert refused(header).code == 1009
    part = b" " * (LIMIT // 2)
    frags = client(Opcode.TEXT, part, fin=False) + client(Opcode.CONT, part, fin=False)
    assert refused(frags + client(Opcode.CONT, b"x")[:6]).code == 1009
    at_limit = client(Opcode.TEXT, b"a" * LIMIT)
    assert read_all(at_limit) == [(OP_TEXT, "a" * LIMIT)]


def test_close_payloads() -> None:
    assert parse_close(b"") == NO_STATUS
    assert parse_close(Close(4000, "bye").serialize()) == 4000
    for bad in (b"\x03", (1005).to_bytes(2, "big"), (2999).to_bytes(2, "big")):
        with pytest.raises(FrameError) as err:
            parse_close(bad)
        assert err.value.code == 1002
    with pytest.raises(FrameError) as err:
        parse_close((1000).to_bytes(2, "big") + b"\xff")
    assert err.value.code == 1007
    frame = close_frame(4008, "\u00e9" * 100)  # cut to 123 bytes, on a character
    assert frame[0] == 0x80 | OP_CLOSE and frame[1] <= 125
    assert Close.parse(frame[2:]) == Close(4008, "\u00e9" * 61)


# -- a parked socket under uvicorn ---------------------------------------------------------
@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'tocsin.db'}",
                        api_keys=[API_KEY], jwt_secret=JWT_SECRET, host="127.0.0.1",
                        port=port, log_level="warning")
    config = uvicorn_config(settings, create_app(settings))
    config.ws_ping_interval = config.ws_ping_timeout = 0.5
    srv = uvicorn.Server(config)
    task = asyncio.create_task(srv.serve())
    while not srv.started:
        await asyncio.sleep(0.02)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        await asyncio.wait_for(task, 30)


def request_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks()
            if getattr(t.get_coro(), "__qualname__", "").endswith("run_asgi")]


async def test_a_subscribed_socket_holds_no_request_task_and_answers_pings(
        server: str) -> None:
    async with connect(f"ws://{server}/api/ws?token={mint('parked')}", compression=None,
                       ping_interval=None) as ws:
        await ws.send('{"op":"subscribe","stream":"inbox"}')
        assert orjson.loads(await asyncio.wait_for(ws.recv(), 10))["op"] == "subscribed"
        await asyncio.sleep(0.1)
        assert request_tasks() == []  # parked: uvicorn's request task has ended
        await asyncio.wait_for(ws.ping(b"abc"), 5)  # the client's ping: a pong
        await asyncio.sleep(1.6)  # three keepalive rounds: the library answers them
        await ws.send('{"op":"ping"}')
        assert orjson.loads(await asyncio.wait_for(ws.recv(), 10)) == {"op": "pong"}
        assert request_tasks() == []  # the message ran in a task of its own, now done


async def test_a_peer_that_answers_no_ping_is_closed_with_1011(server: str) -> None:
    host, port = server.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET /api/ws?token={mint('deaf')} HTTP/1.1\r\nHost: {server}\r\n"
                 "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 101")
    received = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(4096), 5):  # no pong, ever
            received += chunk
    except ConnectionError:
        pass
    writer.close()
    assert received.startswith(bytes((0x80 | OP_PING,)))  # pinged first
    at = received.index(bytes((0x80 | OP_CLOSE,)))
    assert Close.parse(received[at + 2 :]) == Close(1011, "keepalive ping timeout")


async def test_a_client_close_is_answered_and_the_socket_leaves_the_hub(server: str) -> None:
    ws = await connect(f"ws://{server}/api/ws?token={mint('leaver')}", compression=None)
    await ws.send('{"op":"subscribe","stream":"inbox"}')
    await asyncio.wait_for(ws.recv(), 10)
    await asyncio.wait_for(ws.close(4321, "done"), 5)
    assert ws.close_code == 4321  # echoed by the server
    with pytest.raises(ConnectionClosed):
        await ws.recv()
