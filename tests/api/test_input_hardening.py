"""Issue 14 (hardening): client input never yields a 500, and the smaller input rules.

In-process (the whole app through httpx's ASGI transport) and property-based tests of
the parsers every request goes through: event ids and cursors (``ids.parse_position``,
``hot_routes.parse_last_event_id``, ``deps.parse_cursor``) and credentials
(``auth.find_credential``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import jwt
import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.support.inprocess import InProcess, in_process
from tests.support.server import API_KEY, JWT_SECRET, ServerProcess
from tocsin.api.deps import parse_cursor
from tocsin.api.hot_routes import NEVER_ISSUED, parse_last_event_id
from tocsin.auth import Publisher, check_topic, find_credential
from tocsin.errors import TocsinError
from tocsin.ids import Position, parse_position

NOTE = {"recipients": ["hx"], "type": "t", "title": "t"}
METRICS_KEY = "metrics-key-0123456789"


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[InProcess]:
    async with in_process(f"sqlite+aiosqlite:///{tmp_path / 'h.db'}", demo=True) as a:
        yield a


# -- the parsers: any text in, a position or a ValueError out ---------------------------
@given(st.text(max_size=40))
@example("\u00b2")
@example("1-\u0663")  # Arabic-Indic digit three: str.isdigit() accepts it, int() not always
@example("ab-" + "9" * 30)
@example("1\n")
def test_parse_position_returns_a_position_or_value_error(raw: str) -> None:
    try:
        pos = parse_position(raw)
    except ValueError:
        return
    assert isinstance(pos, Position) and 0 <= pos.seq < 10**18
    assert parse_position(str(pos)) == pos


@given(st.one_of(st.none(), st.text(max_size=40)))
@example("\u00b2")
def test_last_event_id_never_raises(raw: str | None) -> None:
    got = parse_last_event_id(raw)
    assert got is None or got is NEVER_ISSUED or isinstance(got, Position)


@given(st.text(max_size=40))
@example("\u00b2")
def test_cursor_is_a_position_or_bad_cursor(raw: str) -> None:
    try:
        parse_cursor(raw, "before")
    except TocsinError as err:
        assert err.code == "bad_cursor" and err.status == 400 and err.field == "before"


header_text = st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=60)


@given(st.dictionaries(st.sampled_from(["authorization", "cookie", "x-other"]), header_text),
       st.binary(max_size=60))
@example({"cookie": "we(ird=1"}, b"token=abc")
@example({"cookie": 'a"b=; =; ;;tocsin_token'}, b"token=%FF&token=")
def test_find_credential_never_raises(headers: dict[str, str], query: bytes) -> None:
    found = find_credential(headers, query)
    assert found is None or found.source in ("header", "cookie", "query")


# -- the same inputs over HTTP: 4xx, never 500 --------------------------------------
@pytest.mark.parametrize("param", ["before", "since"])
async def test_non_ascii_digit_cursor_is_bad_cursor(app: InProcess, param: str) -> None:
    async with app.subscriber("hx", ["hx"]) as c:
        for raw in ("\u00b2", "1-\u00b2", "\u0663"):
            r = await c.get("/api/notifications", params={param: raw})
            assert r.status_code == 400, r.text
            assert r.json()["error"] == {"code": "bad_cursor", "field": param,
                                         "message": r.json()["error"]["message"]}
            r = await c.get("/api/topics/hx/events", params={param: raw})
            assert r.status_code == 400 and r.json()["error"]["code"] == "bad_cursor"


async def test_odd_cookie_with_a_query_token(app: InProcess) -> None:
    from tests.support.server import mint

    async with app.client() as c:
        r = await c.get("/api/notifications/unread-count", params={"token": mint("hx")},
                        headers={"Cookie": "we(ird=1; other=\u00e9".encode()})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(("raw_data", "why"), [
    (b"123456789012345678901234567890", "64 bits"),  # was a 500 (orjson TypeError)
    (b"-9223372036854775809", "64 bits"),
    (b"NaN", "finite"),  # was stored as null
    (b"1e400", "finite"),  # parses as infinity: was stored as null
    (b"-Infinity", "finite"),
])
@pytest.mark.parametrize("route", ["/api/notifications", "/api/topics/hx/events"])
async def test_data_numbers_json_cannot_carry(app: InProcess, route: str, raw_data: bytes,
                                              why: str) -> None:
    body = orjson.dumps(NOTE)[:-1] + b',"data":{"n":[' + raw_data + b"]}}"
    if route != "/api/notifications":
        body = b'{"type":"t","title":"t","data":{"n":[' + raw_data + b"]}}"
    async with app.publisher() as c:
        r = await c.post(route, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["code"] == "invalid_field" and err["field"] == "data" and why in err["message"]


async def test_data_at_the_64_bit_edges_is_kept(app: InProcess) -> None:
    data = {"lo": -(2**63), "hi": 2**64 - 1, "f": 1.5e308}
    async with app.publisher() as c:
        r = await c.post("/api/notifications", json={**NOTE, "recipients": ["edge"], "data": data})
    assert r.status_code == 201, r.text
    async with app.subscriber("edge") as c:
        items = (await c.get("/api/notifications")).json()["items"]
    assert items[0]["data"] == data


@pytest.mark.parametrize(("url", "ok"), [
    ("//evil.example", False), ("/relative/path", False), ("javascript:alert(1)", False),
    ("https://", False), ("http:///path", False), ("https://a b.example", False),
    ("https://ok.example/x\n", False), ("ftp://files.example", False),
    ("https://ok.example/orders/7?x=1#y", True), ("HTTP://OK.EXAMPLE", True),
    ("http://[::1]:8080/", True),
])
async def test_url_must_be_absolute_http(app: InProcess, url: str, ok: bool) -> None:
    async with app.publisher() as c:
        r = await c.post("/api/notifications", json={**NOTE, "url": url})
    if ok:
        assert r.status_code == 201, r.text
    else:
        assert r.status_code == 400, r.text
        assert r.json()["error"]["field"] == "url"


def test_topic_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(TocsinError) as err:
        check_topic("news\n", Publisher("p"))
    assert err.value.field == "topic" and err.value.status == 400
    check_topic("news", Publisher("p"))


async def test_topic_with_a_trailing_newline_over_http(app: InProcess) -> None:
    async with app.publisher() as c:
        r = await c.post("/api/topics/news%0A/events", json={"type": "t", "title": "t"})
    assert r.status_code == 400 and r.json()["error"]["field"] == "topic", r.text


async def test_token_without_exp_is_refused(app: InProcess) -> None:
    forever = jwt.encode({"sub": "hx"}, JWT_SECRET, "HS256")
    async with app.client({"Authorization": f"Bearer {forever}"}) as c:
        r = await c.get("/api/notifications")
    assert r.status_code == 401 and "exp" in r.json()["error"]["message"]
    expiring = jwt.encode({"sub": "hx", "exp": int(time.time()) + 60}, JWT_SECRET, "HS256")
    async with app.client({"Authorization": f"Bearer {expiring}"}) as c:
        assert (await c.get("/api/notifications")).status_code == 200


# -- headers and /metrics ------------------------------------------------------------
async def test_security_headers(app: InProcess) -> None:
    async with app.client() as c:
        js = await c.get("/static/tocsin/define.js")
        docs = await c.get("/docs")
        page = await c.get("/")
        api = await c.get("/healthz")
    for r in (js, docs, page):
        assert r.status_code == 200
        assert r.headers["x-content-type-options"] == "nosniff"
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert "script-src 'self';" in page.headers["content-security-policy"]
    assert "https://" not in docs.headers["content-security-policy"]  # assets: our own
    assert "https://" not in docs.text  # what the policy allows is what it loads
    assert api.headers["x-content-type-options"] == "nosniff"


async def test_metrics_open_without_a_key(app: InProcess) -> None:
    async with app.client() as c:
        r = await c.get("/metrics")
    assert r.status_code == 200 and b"tocsin" in r.content


async def test_metrics_key(tmp_path: Path) -> None:
    async with in_process(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}",
                          metrics_key=METRICS_KEY) as app:
        for headers in ({}, {"Authorization": f"Bearer {API_KEY}"},
                        {"Authorization": "Bearer " + METRICS_KEY[:-1]},
                        {"Authorization": METRICS_KEY}):
            async with app.client(headers) as c:
                r = await c.get("/metrics")
            assert r.status_code == 401, headers
            assert r.json()["error"]["code"] == "unauthorized"
        async with app.client({"Authorization": f"Bearer {METRICS_KEY}"}) as c:
            r = await c.get("/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")



# -- idempotency keys (real servers, SQLite and PostgreSQL) ---------------------------
def test_idempotency_key_reused_with_another_body_is_409(server: ServerProcess,
                                                          uid: str) -> None:
    a, b, new = f"a-{uid}", f"b-{uid}", f"new-{uid}"
    body = {"recipients": [a, b], "type": "t", "title": "Order shipped",
            "idempotencyKey": f"k-{uid}"}
    with server.publisher() as c:
        first = c.post("/api/notifications", json=body)
        assert first.status_code == 201, first.text
        same = c.post("/api/notifications", json={**body, "recipients": [b, a]})
        assert same.status_code == 201 and same.json() == first.json()
        for change in ({"recipients": [a, b, new]}, {"title": "Order cancelled"}):
            r = c.post("/api/notifications", json={**body, **change})
            assert r.status_code == 409, r.text
            assert r.json()["error"]["code"] == "conflict"
            assert r.json()["error"]["field"] == "idempotencyKey"
    with server.subscriber(new) as c:
        assert c.get("/api/notifications").json()["items"] == []
    with server.subscriber(a) as c:
        assert [i["title"] for i in c.get("/api/notifications").json()["items"]] == [
            "Order shipped"]
