"""One implementation per route: ``tocsin serve`` (a real process) and ``create_app()``
(in this process, no server) give the same answer — status, error body, CORS headers —
to the same request, because they run the same code (api/gate.py, api/hot_routes.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.inprocess import InProcess, in_process
from tests.support.listener import recv_until
from tests.support.server import API_KEY, ServerProcess, mint, start_server

ORIGIN = "https://app.example"
VALID = {"recipients": ["rule-user"], "type": "t", "title": "hello"}


@dataclass
class Case:
    name: str
    method: str
    path: str
    status: int
    code: str | None = None
    auth: str | None = "publisher"  # publisher | subscriber | none
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    cors: str | None = None  # expected Access-Control-Allow-Origin
    credentials: bool = False  # expected Access-Control-Allow-Credentials: true


def json_body(obj: Any) -> bytes:
    import json

    return json.dumps(obj).encode()


CASES = [
    # The first example: an API key in ?token= is refused on every route.
    Case("api key in query", "POST", "/api/notifications", 401, "unauthorized", auth="none",
         params={"token": API_KEY}, content=json_body(VALID),
         headers={"content-type": "application/json"}),
    Case("api key in cookie", "GET", "/api/stats", 401, "unauthorized", auth="none",
         headers={"cookie": f"tocsin_token={API_KEY}"}),
    # The second example: JSON sent as text/plain gets one answer everywhere.
    Case("publish as text/plain", "POST", "/api/notifications", 415, "unsupported_media_type",
         content=json_body(VALID), headers={"content-type": "text/plain"}),
    Case("token as text/plain", "POST", "/api/tokens", 415, "unsupported_media_type",
         content=json_body({"user": "a"}), headers={"content-type": "text/plain"}),
    Case("form post", "POST", "/api/notifications/read-all", 415, "unsupported_media_type",
         auth="subscriber", content=b"a=1",
         headers={"content-type": "application/x-www-form-urlencoded"}),
    Case("publish json", "POST", "/api/notifications", 201, content=json_body(VALID),
         headers={"content-type": "application/json; charset=utf-8"}),
    Case("token json", "POST", "/api/tokens", 201, content=json_body({"user": "a"}),
         headers={"content-type": "application/json"}),
    Case("empty body needs no type", "POST", "/api/notifications/read-all", 200,
         auth="subscriber"),
    Case("malformed json", "POST", "/api/notifications", 400, "malformed_json",
         content=b"{", headers={"content-type": "application/json"}),
    Case("unauthenticated is refused before the body", "POST", "/api/topics/x/events", 401,
         "unauthorized", auth="none", content=b"{}", headers={"content-type": "text/plain"}),
    Case("stream with an api key", "GET", "/api/notifications/stream", 403, "forbidden"),
    Case("publish with a user token", "POST", "/api/notifications", 403, "forbidden",
         auth="subscriber", content=json_body(VALID),
         headers={"content-type": "application/json"}),
    Case("topic stream bad name", "GET", "/api/topics/a%20b/stream", 400, "invalid_field",
         auth="subscriber"),
    Case("cursor garbage", "GET", "/api/notifications", 400, "bad_cursor",
         auth="subscriber", params={"before": "²"}),
    # CSRF: a cookie-authenticated write must be JSON and from an allowed origin.
    Case("cookie write without json", "POST", "/api/notifications/read-all", 403, "forbidden",
         auth="cookie"),
    Case("cookie write from a foreign origin", "POST", "/api/notifications/read-all", 403,
         "forbidden", auth="cookie", content=b"{}",
         headers={"content-type": "application/json", "origin": "https://evil.example"}),
    Case("cookie write from an allowed origin", "POST", "/api/notifications/read-all", 200,
         auth="cookie", content=b"{}", cors=ORIGIN, credentials=True,
         headers={"content-type": "application/json", "origin": ORIGIN}),
    # CORS: one policy for the framework routes, the hot routes and errors alike.
    Case("cors on a framework route", "GET", "/api/notifications/unread-count", 200,
         auth="subscriber", headers={"origin": ORIGIN}, cors=ORIGIN, credentials=True),
    Case("cors on a hot route error", "POST", "/api/notifications", 403, "forbidden",
         auth="subscriber", headers={"origin": ORIGIN, "content-type": "application/json"},
         content=json_body(VALID), cors=ORIGIN, credentials=True),
    Case("no cors for others", "GET", "/api/notifications/unread-count", 200,
         auth="subscriber", headers={"origin": "https://other.example"}),
    Case("preflight allowed", "OPTIONS", "/api/notifications", 204, auth="none",
         headers={"origin": ORIGIN, "access-control-request-method": "POST"}, cors=ORIGIN,
         credentials=True),
    Case("preflight refused", "OPTIONS", "/api/notifications", 403, "forbidden", auth="none",
         headers={"origin": "https://evil.example", "access-control-request-method": "POST"}),
    Case("unknown route", "GET", "/api/nothing-here", 404, "not_found"),
]


def request_of(case: Case) -> dict[str, Any]:
    headers = dict(case.headers)
    if case.auth == "publisher":
        headers["authorization"] = f"Bearer {API_KEY}"
    elif case.auth == "subscriber":
        headers["authorization"] = f"Bearer {mint('rule-user')}"
    elif case.auth == "cookie":
        headers["cookie"] = f"tocsin_token={mint('rule-user')}"
    return {"method": case.method, "url": case.path, "headers": headers,
            "params": case.params, "content": case.content}


def outcome(case: Case, r: httpx.Response) -> tuple[int, str | None, str | None, bool]:
    code = r.json()["error"]["code"] if r.status_code >= 400 else None
    return (r.status_code, code, r.headers.get("access-control-allow-origin"),
            r.headers.get("access-control-allow-credentials") == "true")


def expected(case: Case) -> tuple[int, str | None, str | None, bool]:
    return (case.status, case.code, case.cors, case.credentials)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("one-way")
    srv = start_server(tmp, extra=["--cors-origin", ORIGIN])
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
async def inproc(tmp_path: Path) -> AsyncIterator[InProcess]:
    async with in_process(f"sqlite+aiosqlite:///{tmp_path / 'db'}",
                          cors_origins=[ORIGIN]) as app:
        yield app


async def test_serve_and_create_app_answer_alike(served: ServerProcess,
                                                 inproc: InProcess) -> None:
    results: list[str] = []
    async with httpx.AsyncClient(base_url=served.url, timeout=10) as real, \
            inproc.client() as local:
        for case in CASES:
            req = request_of(case)
            a = outcome(case, await real.request(**req))
            b = outcome(case, await local.request(**req))
            if not (a == b == expected(case)):
                results.append(f"{case.name}: serve={a} create_app={b} want={expected(case)}")
    assert not results, "\n".join(results)


async def test_the_error_body_is_identical(served: ServerProcess, inproc: InProcess) -> None:
    req = request_of(CASES[2])
    async with httpx.AsyncClient(base_url=served.url, timeout=10) as real, \
            inproc.client() as local:
        a, b = await real.request(**req), await local.request(**req)
    assert a.json() == b.json()
    assert "application/json" in a.json()["error"]["message"]


async def test_wildcard_origin_never_allows_credentials(tmp_path: Path) -> None:
    async with in_process(f"sqlite+aiosqlite:///{tmp_path / 'db'}",
                          cors_origins=["*"]) as app, app.subscriber("w") as c:
        r = await c.get("/api/notifications/unread-count", headers={"origin": "null"})
        assert r.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in r.headers
        pre = await c.options("/api/notifications", headers={
            "origin": "https://x.example", "access-control-request-method": "POST"})
        assert pre.status_code == 204 and pre.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in pre.headers


async def test_chunked_body_over_the_limit_is_refused(tmp_path: Path) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(9):
            yield b" " * (1024 * 1024)

    async with in_process(f"sqlite+aiosqlite:///{tmp_path / 'db'}") as app, \
            app.publisher() as c:
        r = await c.post("/api/notifications", content=chunks(),
                         headers={"content-type": "application/json"})
        assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
        r = await c.post("/api/tokens", content=chunks(),
                         headers={"content-type": "application/json"})
        assert r.status_code == 413


def test_declared_too_large_is_refused_before_reading(served: ServerProcess) -> None:
    """The limit applies to the declared length: the server answers without waiting
    for (or reading) the 9 MB the client announced."""
    import socket

    host, port = served.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"POST /api/notifications HTTP/1.1\r\nHost: x\r\n"
                     b"Authorization: Bearer " + API_KEY.encode() + b"\r\n"
                     b"Content-Type: application/json\r\n"
                     b"Content-Length: 9437184\r\n\r\n{")
        reply = recv_until(sock, b"payload_too_large", 4096)
    assert reply.startswith(b"HTTP/1.1 413"), reply
    assert b"payload_too_large" in reply
