"""The demo's own routes follow the API's input rules (they publish for anyone)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.inprocess import in_process
from tocsin.config import Settings, describe_error


@pytest.mark.parametrize("url", ["javascript:alert(1)", "//evil.example", "/relative"])
async def test_demo_send_refuses_links_the_api_refuses(tmp_path: Path, url: str) -> None:
    async with in_process(f"sqlite+aiosqlite:///{tmp_path / 'db'}", demo=True) as app, \
            app.client() as c:
        r = await c.post("/demo/api/send", json={"to": ["alice"], "title": "x", "url": url})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["field"] == "url"
        ok = await c.post("/demo/api/send", json={"to": ["alice"], "title": "x",
                                                   "url": "https://example.com/a"})
        assert ok.status_code == 201, ok.text


def test_a_rejected_secret_is_never_echoed() -> None:
    from pydantic import ValidationError

    try:
        Settings(jwt_secret="hunter2-too-short", api_keys=["k" * 20])
    except ValidationError as exc:
        message = describe_error(exc)
    else:
        raise AssertionError("a short secret was accepted")
    assert "TOCSIN_JWT_SECRET" in message and "hunter2" not in message


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_demo_send_follows_the_text_rule(tmp_path: Path, backend: str) -> None:
    """Issue 21 item 7: the playground publishes for anyone; NUL in its title was a 500
    on PostgreSQL. The API's text rule (tocsin/text.py) applies here too."""
    import asyncio

    import httpx

    from tests.support.server import start_server
    from tests.support.services import database_url, drop_pg_schema

    url, schema = database_url(backend, tmp_path)
    srv = start_server(tmp_path, database=url, extra=["--demo"])
    try:
        for field, value in [("title", "a\x00"), ("body", "\x00"), ("type", "t\x0b"),
                             ("groupKey", "\x00"), ("source", "\x85")]:
            r = httpx.post(srv.url + "/demo/api/send",
                           json={"to": ["alice"], "title": "x", field: value})
            assert r.status_code == 400, (field, r.text)
            assert r.json()["error"]["field"] == field
        assert "Traceback" not in srv.log()
    finally:
        srv.stop()
        if schema:
            asyncio.run(drop_pg_schema(schema))
