"""Upgrades (docs/deploy.md, "Upgrades"), on SQLite and PostgreSQL.

- A database at the previous release's schema (the newest migration taken back with
  Alembic's downgrade), holding what was stored before: ``tocsin migrate`` applies the
  one newer migration, a node serves the old events and new ones, and keeps serving
  while ``tocsin migrate`` runs again.
- A rollback: a node finding a schema newer than it knows runs on it (it used to fail
  at start, so a release could never be rolled back once it had migrated).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.server import ServerProcess, start_server
from tests.support.services import database_url, drop_pg_schema
from tests.support.sse import StreamReader
from tocsin.store.sql import MIGRATIONS_DIR

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    url, schema = database_url(request.param, tmp_path)
    yield url
    if schema is not None:
        await drop_pg_schema(schema)


def _alembic() -> Any:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg, ScriptDirectory.from_config(cfg)


async def on_database(url: str, work: Any) -> Any:
    """``work(sync connection)`` on ``url``'s database as it is (no store: a store
    would migrate it first), committed."""
    base, _, query = url.partition("?")
    options = dict(parse_qsl(query))
    schema = options.pop("schema", None)
    connect_args = {"server_settings": {"search_path": schema}} if schema else {}
    engine = create_async_engine(base + ("?" + urlencode(options) if options else ""),
                                 connect_args=connect_args)
    try:
        async with engine.connect() as conn:
            result = await conn.run_sync(work)
            await conn.commit()
            return result
    finally:
        await engine.dispose()


def downgrade_to(revision: str) -> Any:
    def run(sync_conn: Any) -> None:
        from alembic import command

        cfg, _ = _alembic()
        cfg.attributes["connection"] = sync_conn
        command.downgrade(cfg, revision)
    return run


def version(sync_conn: Any) -> str:
    return str(sync_conn.execute(text("SELECT version_num FROM tocsin_alembic_version"))
               .scalar_one())


def set_version(revision: str) -> Any:
    def run(sync_conn: Any) -> None:
        sync_conn.execute(text("UPDATE tocsin_alembic_version SET version_num = :v"),
                          {"v": revision})
    return run


def migrate(url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    return subprocess.run([sys.executable, "-m", "tocsin", "migrate", "--database", url],
                          capture_output=True, text=True, timeout=60, env=env)


def publish(srv: ServerProcess, user: str, title: str) -> None:
    with srv.publisher() as c:
        r = c.post("/api/notifications", json={"recipients": [user], "title": title,
                                                 "type": "deploy"})
        assert r.status_code == 201, r.text


def inbox(srv: ServerProcess, user: str) -> dict[str, Any]:
    with srv.subscriber(user) as c:
        r = c.get("/api/notifications")
        assert r.status_code == 200, r.text
        return dict(r.json())


async def serves_live(srv: ServerProcess, user: str, after: str, titles: list[str],
                      between: Any = None) -> None:
    """A stream resumed at ``after`` gets each of ``titles`` published now, in order,
    once; ``between()`` runs after the first one arrived."""
    async with StreamReader(f"{srv.url}/api/notifications/stream", srv.token(user), after,
                            stream_events_only=True) as stream:
        for i, title in enumerate(titles):
            publish(srv, user, title)
            await stream.wait_for(i + 1, pred=lambda e: e.event == "notification")
            if i == 0 and between is not None:
                between()
        got = [e.data["title"] for e in stream.events if e.event == "notification"]
    assert got == titles


async def test_migrating_from_the_previous_schema_keeps_serving(
    db: str, tmp_path: Path, uid: str,
) -> None:
    _, scripts = _alembic()
    newest = scripts.get_current_head()
    previous = scripts.get_revision(newest).down_revision
    assert isinstance(previous, str)
    user = f"u{uid}"

    # What was stored before the upgrade, on the previous release's schema.
    for name in ("before", "after"):
        (tmp_path / name).mkdir()
    before = start_server(tmp_path / "before", database=db)
    try:
        publish(before, user, "before the upgrade")
        resume_at = inbox(before, user)["lastEventId"]
    finally:
        before.stop()
    await on_database(db, downgrade_to(previous))
    assert await on_database(db, version) == previous

    out = migrate(db)
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip().startswith(f"applied 1 migration: {newest};"), out.stderr
    assert await on_database(db, version) == newest

    srv = start_server(tmp_path / "after", database=db)
    try:
        def migrate_again() -> None:  # a second node's start, or the release step re-run
            again = migrate(db)
            assert again.returncode == 0 and "already at the newest" in again.stderr, \
                again.stderr

        await serves_live(srv, user, resume_at, ["after the upgrade", "after migrating again"],
                          between=migrate_again)
        titles = [n["title"] for n in inbox(srv, user)["items"]]
        assert sorted(titles) == ["after migrating again", "after the upgrade",
                                  "before the upgrade"]
    finally:
        srv.stop()


async def test_a_node_runs_on_a_schema_newer_than_it_knows(
    db: str, tmp_path: Path, uid: str,
) -> None:
    """A rollback: the newer release migrated to a revision this code does not have."""
    user = f"u{uid}"
    out = migrate(db)
    assert out.returncode == 0, out.stderr
    await on_database(db, set_version("9999_from_a_newer_release"))
    again = migrate(db)
    assert again.returncode == 0 and "revision 9999_from_a_newer_release, newer than this " \
        "release knows: nothing applied" in " ".join(again.stderr.split()), again.stderr
    srv = start_server(tmp_path, database=db)
    try:
        await serves_live(srv, user, "0", ["on the newer schema"])
        assert "9999_from_a_newer_release, newer than this release knows" in srv.log()
    finally:
        srv.stop()
    assert await on_database(db, version) == "9999_from_a_newer_release"
