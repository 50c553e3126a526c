"""The shipped ``deploy/nginx.conf`` served by real nginx (TLS and HTTP/2 as in
production: ``nginx_proxy.py`` says the few values replaced) in front of a real
``tocsin serve``: every transport works through it, ``/metrics`` does not, and tokens
sent as ``?token=`` stay out of the access log.

Skips when nginx (with its SSL and HTTP/2 modules) is missing, and fails instead when
``TOCSIN_REQUIRE_SERVICES=1`` (as in CI, whose ``.ci/run`` installs nginx).
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Origin

from tests.deploy.nginx_proxy import SERVER_NAME, NginxProxy, missing_features, start_nginx
from tests.support.server import ServerProcess, start_server
from tests.support.services import need
from tests.support.sse import StreamReader
from tests.support.wait import wait_until

LIVE_WITHIN_S = 1.0


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess,
                                                                          NginxProxy]]:
    """Tocsin (SQLite, in-process broker) and nginx in front of it, for the module."""
    reason = missing_features()
    need(reason is None, f"nginx for deploy/nginx.conf ({reason})")
    srv = start_server(tmp_path_factory.mktemp("tocsin"), extra=["--heartbeat", "1s"])
    try:
        proxy = start_nginx(tmp_path_factory.mktemp("nginx"), srv.port)
    except BaseException:
        srv.stop()
        raise
    try:
        yield srv, proxy
    finally:
        proxy.stop()
        srv.stop()


@pytest.fixture
def srv(proxied: tuple[ServerProcess, NginxProxy]) -> ServerProcess:
    return proxied[0]


@pytest.fixture
def proxy(proxied: tuple[ServerProcess, NginxProxy]) -> NginxProxy:
    return proxied[1]


@pytest.fixture
async def publisher(srv: ServerProcess, proxy: NginxProxy) -> AsyncIterator[httpx.AsyncClient]:
    """Publishes through the proxy too (``location /``)."""
    async with httpx.AsyncClient(base_url=proxy.url, verify=proxy.client_tls(), timeout=10,
                                 headers={"Authorization": f"Bearer {srv.api_key}"}) as c:
        yield c


async def publish(pub: httpx.AsyncClient, user: str, title: str) -> None:
    r = await pub.post("/api/notifications",
                       json={"recipients": [user], "type": "t", "title": title})
    assert r.status_code == 201, r.text


def through(proxy: NginxProxy, token: str, last_event_id: str | None = None,
            token_in_query: bool = False) -> StreamReader:
    """The inbox stream through nginx (each event recorded with its arrival time)."""
    return StreamReader(proxy.url + "/api/notifications/stream", token, last_event_id,
                        stream_events_only=True, token_in_query=token_in_query,
                        verify=proxy.client_tls())


def test_tls_negotiates_http2_and_sends_hsts(proxy: NginxProxy) -> None:
    """Browsers get HTTP/2 (one connection for all tabs' streams), chosen by ALPN."""
    ctx = proxy.client_tls()
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", proxy.port), 5) as raw, \
            ctx.wrap_socket(raw, server_hostname=SERVER_NAME) as tls:
        assert tls.selected_alpn_protocol() == "h2"
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
    r = httpx.get(proxy.url + "/readyz", verify=proxy.client_tls())
    assert r.status_code == 200, r.text
    assert r.headers["strict-transport-security"].startswith("max-age=")


async def test_sse_is_live_within_a_second(srv: ServerProcess, proxy: NginxProxy,
                                           publisher: httpx.AsyncClient, uid: str) -> None:
    async with through(proxy, srv.token(uid)) as stream:
        for i in range(5):
            sent = time.monotonic()
            await publish(publisher, uid, f"live-{i}")
            e = (await stream.wait_for(i + 1, timeout=10))[i]
            assert e.event == "notification" and e.data["title"] == f"live-{i}"
            assert e.at - sent < LIVE_WITHIN_S, f"event {i} took {e.at - sent:.3f}s via nginx"


async def test_last_event_id_resumes_after_it(srv: ServerProcess, proxy: NginxProxy,
                                              publisher: httpx.AsyncClient, uid: str) -> None:
    async with through(proxy, srv.token(uid)) as stream:
        for i in range(3):
            await publish(publisher, uid, f"n{i}")
        got = list(await stream.wait_for(3, timeout=10))
    first_id = got[0].id
    async with through(proxy, srv.token(uid), last_event_id=first_id) as resumed:
        again = await resumed.wait_for(2, timeout=10)
        assert [(e.id, e.data["title"]) for e in again] == \
            [(e.id, e.data["title"]) for e in got[1:]]
        await asyncio.sleep(1.5)  # nothing before or after those
        assert len(resumed.events) == 2, resumed.events


async def ws_subscribe_inbox(ws: ClientConnection) -> dict[str, Any]:
    await ws.send(json.dumps({"op": "subscribe", "stream": "inbox"}))
    ack: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
    return ack


async def ws_next_event(ws: ClientConnection) -> dict[str, Any]:
    while True:
        msg: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if "op" not in msg:
            return msg


async def test_websocket_subscription_through_nginx(
        srv: ServerProcess, proxy: NginxProxy, publisher: httpx.AsyncClient, uid: str) -> None:
    url = f"wss://127.0.0.1:{proxy.port}/api/ws?token={srv.token(uid)}"
    async with connect(url, ssl=proxy.client_tls()) as ws:
        ack = await ws_subscribe_inbox(ws)
        assert ack["op"] == "subscribed", ack
        sent = time.monotonic()
        await publish(publisher, uid, "over-ws")
        msg = await ws_next_event(ws)
        assert (msg["stream"], msg["event"], msg["data"]["title"]) == \
            ("inbox", "notification", "over-ws")
        assert time.monotonic() - sent < LIVE_WITHIN_S


async def test_websocket_with_cookie_from_its_own_origin(
        srv: ServerProcess, proxy: NginxProxy, publisher: httpx.AsyncClient, uid: str) -> None:
    """Tocsin accepts a cookie-authenticated socket only from its own origin, compared
    with the Host it receives: the WebSocket location must pass the client's Host on
    (nginx would otherwise send the upstream's name, ``tocsin``)."""
    url = f"wss://{SERVER_NAME}/api/ws"  # the default port, as a browser would see it

    def with_cookie(origin: str) -> connect:
        return connect(url, ssl=proxy.client_tls(), host="127.0.0.1", port=proxy.port,
                       origin=Origin(origin),
                       additional_headers={"Cookie": f"tocsin_token={srv.token(uid)}"})

    async with with_cookie(f"https://{SERVER_NAME}") as ws:
        ack = await ws_subscribe_inbox(ws)
        assert ack["op"] == "subscribed", ack
        await publish(publisher, uid, "cookie-ws")
        assert (await ws_next_event(ws))["data"]["title"] == "cookie-ws"
    # the check is live through the proxy: another origin is refused (4003)
    async with with_cookie("https://elsewhere.example") as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws_subscribe_inbox(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4003, closed.value


async def test_long_poll_through_nginx(srv: ServerProcess, proxy: NginxProxy,
                                       publisher: httpx.AsyncClient, uid: str) -> None:
    headers = {"Authorization": f"Bearer {srv.token(uid)}"}
    async with httpx.AsyncClient(base_url=proxy.url, verify=proxy.client_tls(),
                                 headers=headers, timeout=30) as sub:
        head = (await sub.get("/api/notifications")).json()["lastEventId"]
        started = time.monotonic()
        poll = asyncio.create_task(sub.get("/api/notifications/poll",
                                           params={"since": head, "wait": 20}))
        await asyncio.sleep(0.5)
        assert not poll.done(), "the poll answered before anything was published"
        await publish(publisher, uid, "polled")
        r = await poll
        took = time.monotonic() - started
    assert r.status_code == 200, r.text
    assert [e["data"]["title"] for e in r.json()["events"]] == ["polled"]
    assert took < 0.5 + LIVE_WITHIN_S + 1, f"the poll answered after {took:.2f}s"


@pytest.mark.parametrize("path", ["/metrics", "/metrics?format=x", "//metrics",
                                  "/%6Detrics", "/./metrics", "/api/../metrics"])
def test_metrics_refused(srv: ServerProcess, proxy: NginxProxy, path: str) -> None:
    with httpx.Client(verify=proxy.client_tls()) as c:
        r = c.get(proxy.url + path)
        assert r.status_code == 403, (path, r.status_code, r.text[:200])
        assert "tocsin_" not in r.text
    assert httpx.get(srv.url + "/metrics").status_code == 200  # nginx refuses, not Tocsin


async def test_no_token_in_the_access_log(srv: ServerProcess, proxy: NginxProxy,
                                          publisher: httpx.AsyncClient, uid: str) -> None:
    """EventSource sends its token as ``?token=``: the log has the paths, never it."""
    token = srv.token(uid)
    async with through(proxy, token, token_in_query=True) as stream:
        await publish(publisher, uid, "logged")
        await stream.wait_for(1, timeout=10)
    async with httpx.AsyncClient(base_url=proxy.url, verify=proxy.client_tls()) as c:
        r = await c.get("/api/notifications/poll", params={"token": token, "wait": 0})
        assert r.status_code == 200, r.text
        r = await c.get("/api/notifications", params={"token": token, "limit": 1})
        assert r.status_code == 200, r.text
    async with connect(f"wss://127.0.0.1:{proxy.port}/api/ws?token={token}",
                                  ssl=proxy.client_tls()) as ws:
        assert (await ws_subscribe_inbox(ws))["op"] == "subscribed"

    # streams and sockets are logged when nginx sees them close
    expected = ["GET /api/notifications/stream ", "GET /api/notifications/poll ",
                "GET /api/notifications ", "GET /api/ws "]
    wait_until(lambda: all(line in proxy.access_log() for line in expected), within=10,
               what=lambda: f"the requests in the access log:\n{proxy.access_log()}")
    log = proxy.access_log()
    signature = token.rsplit(".", 1)[1]
    assert signature not in log and "token=" not in log, log
    # the surrounding nginx.conf's own access log (as Debian's and the Docker image's
    # set one) is replaced for this server, not written alongside
    assert proxy.http_level_log() == ""


def test_file_used_is_the_shipped_one(proxy: NginxProxy) -> None:
    """What nginx ran differs from deploy/nginx.conf in the substituted lines only."""
    shipped = (Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf").read_text()
    ran = (proxy.directory / "tocsin.conf").read_text()
    changed = [(a, b) for a, b in zip(shipped.splitlines(), ran.splitlines(), strict=True)
               if a != b]
    assert len(changed) == 6, changed
