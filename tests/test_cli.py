"""The command line, run as a user would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jwt

from tests.support.server import ServerProcess
from tocsin import __version__


def tocsin(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tocsin", *args], capture_output=True,
                          text=True, timeout=60, env=env)


def test_version_and_help() -> None:
    assert tocsin("--version").stdout.strip() == f"tocsin {__version__}"
    for cmd in ("serve", "demo", "migrate", "token", "send", "listen"):
        out = tocsin(cmd, "--help")
        assert out.returncode == 0 and "Usage" in out.stdout, cmd


def test_serve_refuses_without_credentials(tmp_path: Path) -> None:
    out = tocsin("serve", "--database", f"sqlite+aiosqlite:///{tmp_path}/x.db")
    assert out.returncode == 2 and "--dev" in out.stderr


def test_token_mints_a_valid_jwt() -> None:
    out = tocsin("token", "alice", "--topic", "team:*", "--ttl", "2h", "--jwt-secret", "s" * 32)
    claims = jwt.decode(out.stdout.strip(), "s" * 32, algorithms=["HS256"])
    assert claims["sub"] == "alice" and claims["topics"] == ["team:*"]
    assert 7100 < claims["exp"] - claims["iat"] <= 7200


def test_migrate_creates_the_schema(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    out = tocsin("migrate", "--database", f"sqlite+aiosqlite:///{db}")
    assert out.returncode == 0, out.stderr
    import sqlite3

    tables = {r[0] for r in sqlite3.connect(db).execute(
        "select name from sqlite_master where type='table'")}
    assert {"tocsin_notifications", "tocsin_events", "tocsin_streams"} <= tables


def test_send_publishes_through_the_api(sqlite_server: ServerProcess) -> None:
    out = tocsin("send", "--to", "alice", "--to", "bob", "--priority", "high", "--title",
                 "Deploy finished", "--body", "v1.2 is live", "--server", sqlite_server.url,
                 "--api-key", sqlite_server.api_key)
    assert out.returncode == 0, out.stderr
    assert {line.split("\t")[0] for line in out.stdout.splitlines()} == {"alice", "bob"}
    with sqlite_server.subscriber("bob") as c:
        item = c.get("/api/notifications").json()["items"][0]
    assert item["title"] == "Deploy finished" and item["priority"] == "high"
    bad = tocsin("send", "--to", "a", "--title", "x", "--priority", "nope", "--server",
                 sqlite_server.url, "--api-key", sqlite_server.api_key)
    # A bad flag is a usage error (2) caught before anything is sent.
    assert bad.returncode == 2 and "priority" in bad.stderr.lower(), bad.stderr
