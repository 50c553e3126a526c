"""Settings that fail loudly (issue 28): a real ``tocsin serve`` or ``tocsin migrate``
given a URL it cannot use stops at once with one line that names the setting, instead
of running degraded forever (an unknown broker option) or printing a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.server import API_KEY, JWT_SECRET, free_port
from tests.support.services import PG_URL, need_postgres, need_redis, pg_schema_url


def tocsin(*args: str, env: dict[str, str] | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    return subprocess.run([sys.executable, "-m", "tocsin", *args], capture_output=True,
                          text=True, timeout=timeout, env={**clean, **(env or {})})


def serve(tmp_path: Path, *extra: str, env: dict[str, str] | None = None
          ) -> subprocess.CompletedProcess[str]:
    # A server that wrongly starts would run until the timeout: the test then fails.
    env = {"TOCSIN_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 't.db'}", **(env or {})}
    return tocsin("serve", "--port", str(free_port()), "--api-key", API_KEY,
                  "--jwt-secret", JWT_SECRET, *extra, env=env, timeout=30)


@pytest.mark.redis
@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("option", ["backlog=10000", "chanel=tocsin"])
def test_an_unknown_broker_option_stops_serve(tmp_path: Path, option: str,
                                              workers: str) -> None:
    need_redis()
    url = f"redis://:pw-not-shown@127.0.0.1:6379/0?{option}"
    by_flag = serve(tmp_path, "--broker", url, "--workers", workers)
    by_variable = serve(tmp_path, "--workers", workers, env={"TOCSIN_BROKER_URL": url})
    for out in (by_flag, by_variable):
        assert out.returncode == 2, out.stderr
        text = " ".join(out.stderr.split())
        assert "TOCSIN_BROKER_URL / --broker" in text and repr(option.split("=")[0]) in text
        assert "pw-not-shown" not in text and "Traceback" not in text
        assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("url", ["postgresql+asyncpg://127.0.0.1/test?sslmode=require",
                                 "sqlite+aiosqlite:////tmp/x.db?synchronus=normal",
                                 "mysql://127.0.0.1/tocsin"])
def test_an_unusable_database_url_stops_serve_and_migrate(tmp_path: Path, url: str) -> None:
    for out in (serve(tmp_path, env={"TOCSIN_DATABASE_URL": url}),
                tocsin("migrate", env={"TOCSIN_DATABASE_URL": url})):
        assert out.returncode == 2, out.stderr
        assert "TOCSIN_DATABASE_URL / --database" in " ".join(out.stderr.split())


def test_migrate_against_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    port = free_port()
    out = tocsin("migrate", "--database",
                 f"postgresql+asyncpg://tocsin:s3cret-pw@127.0.0.1:{port}/tocsin")
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert f"postgresql+asyncpg://127.0.0.1:{port}/tocsin" in lines[0]
    assert "s3cret-pw" not in out.stderr
    assert "refused" in lines[0].lower() or "connect" in lines[0].lower(), lines[0]


MIGRATIONS = sorted(p.name[:4] for p in (Path(__file__).parents[2] / "tocsin" / "store"
                                         / "migrations" / "versions").glob("[0-9]*_*.py"))
"""The revisions a new database gets (every branch adds its own: never a fixed count)."""


def test_migrate_says_what_it_applied(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    first = tocsin("migrate", "--database", url)
    assert first.returncode == 0, first.stderr
    assert f"applied {len(MIGRATIONS)} migrations: {', '.join(MIGRATIONS)}" in first.stderr
    again = tocsin("migrate", "--database", url)
    assert again.returncode == 0, again.stderr
    assert "already at the newest migration (nothing applied)" in again.stderr


@pytest.mark.postgres
def test_migrate_on_postgresql_says_what_it_applied(uid: str) -> None:
    need_postgres()
    url = pg_schema_url(f"mig_{uid}", PG_URL)
    first = tocsin("migrate", "--database", url)
    assert first.returncode == 0, first.stderr
    assert f"applied {len(MIGRATIONS)} migrations" in first.stderr, first.stderr
    again = tocsin("migrate", "--database", url)
    assert "already at the newest migration" in again.stderr, again.stderr
