"""Settings: every documented TOCSIN_* variable reaches every way of running a server.

The commands are run in-process through typer's CliRunner with ``tocsin.cli._run``
(which would start the server) replaced by a capture, so each case checks the exact
Settings the command would run with; ``serve --workers 2`` checks what the workers
receive (their environment from the supervisor, read back as a worker reads it);
``app_from_env()`` is checked by capturing what it hands to ``create_app``. One test
starts a real ``tocsin serve`` configured by variables alone.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

import tocsin.app
from tests.support.wait import wait_until
from tocsin import cli
from tocsin.config import Settings, env_name
from tocsin.supervisor import worker_env
from tocsin.units import parse_duration

README = Path(__file__).resolve().parent.parent / "README.md"
K1, K2 = "k1-0123456789abcdef", "k2-0123456789abcdef"
VAPID_KEY = "CkbpxiLArptc_cx3A82Tl_1feIi6V3gg7J4I4GA6OVI"

# (variable, example value as a user writes it, attribute, the value it must produce)
ROWS: list[tuple[str, str, str, Any]] = [
    ("TOCSIN_HOST", "0.0.0.0", "host", "0.0.0.0"),
    ("TOCSIN_PORT", "8123", "port", 8123),
    ("TOCSIN_DATABASE_URL", "sqlite+aiosqlite:////tmp/tocsin-cfg/t.db", "database_url",
     "sqlite+aiosqlite:////tmp/tocsin-cfg/t.db"),
    ("TOCSIN_BROKER_URL", "redis://127.0.0.1:6379/3", "broker_url", "redis://127.0.0.1:6379/3"),
    ("TOCSIN_API_KEYS", f"{K1}, {K2}", "api_keys", [K1, K2]),
    ("TOCSIN_JWT_SECRET", "s" * 32, "jwt_secret", "s" * 32),
    ("TOCSIN_HEARTBEAT", "500ms", "heartbeat_s", 0.5),
    ("TOCSIN_RETENTION", "2d", "retention_s", 2 * 86400.0),
    ("TOCSIN_RETRY_MS", "1500", "retry_ms", 1500),
    ("TOCSIN_DEGRADED_POLL", "250ms", "degraded_poll_s", 0.25),
    ("TOCSIN_WORKERS", "3", "workers", 3),
    ("TOCSIN_CORS_ORIGINS", "http://a.test,http://b.test", "cors_origins",
     ["http://a.test", "http://b.test"]),
    ("TOCSIN_DEV", "true", "dev", True),
    ("TOCSIN_DEMO", "1", "demo", True),
    ("TOCSIN_CONSOLE", "1", "console", True),
    ("TOCSIN_LOG_LEVEL", "DEBUG", "log_level", "debug"),
    ("TOCSIN_RATE_TOPIC_POSTS", "5/s:20", "rate_topic_posts", "5/s:20"),
    ("TOCSIN_RATE_READS", "off", "rate_reads", "off"),
    ("TOCSIN_RATE_PUBLISH", "100/m", "rate_publish", "100/m"),
    ("TOCSIN_MAX_USER_STREAMS", "20", "max_user_streams", 20),
    ("TOCSIN_MAX_HEADER_BYTES", "16384", "max_header_bytes", 16384),
    ("TOCSIN_HEADER_TIMEOUT", "3s", "header_timeout_s", 3.0),
    ("TOCSIN_WS_WRITE_TIMEOUT", "5s", "ws_write_timeout_s", 5.0),
    ("TOCSIN_METRICS_KEY", "m" * 16, "metrics_key", "m" * 16),
    ("TOCSIN_TIMER_POLL", "200ms", "timer_poll_s", 0.2),
    ("TOCSIN_GROUP_WINDOW", "10m", "group_window_s", 600.0),
    ("TOCSIN_PRESENCE_INTERVAL", "500ms", "presence_interval_s", 0.5),
    ("TOCSIN_SMTP_URL", "smtps://u%40x:p%3Aw@mail.example.com:465", "smtp_url",
     "smtps://u%40x:p%3Aw@mail.example.com:465"),
    ("TOCSIN_SMTP_USER", "mailer", "smtp_user", "mailer"),
    ("TOCSIN_SMTP_PASSWORD", "pw 1", "smtp_password", SecretStr("pw 1")),
    ("TOCSIN_SMTP_STARTTLS", "true", "smtp_starttls", True),
    ("TOCSIN_SMTP_FROM", "Tocsin <noreply@example.com>", "smtp_from",
     "Tocsin <noreply@example.com>"),
    ("TOCSIN_PUBLIC_URL", "https://notify.example.com/", "public_url",
     "https://notify.example.com"),
    ("TOCSIN_VAPID_PRIVATE_KEY", VAPID_KEY, "vapid_private_key", VAPID_KEY),
    ("TOCSIN_VAPID_SUBJECT", "https://ops.example.com/contact", "vapid_subject",
     "https://ops.example.com/contact"),
    ("TOCSIN_PUSH_ALLOW_INSECURE", "1", "push_allow_insecure", True),
    ("TOCSIN_WEBHOOK_ALLOW_PRIVATE", "1", "webhook_allow_private", True),
    ("TOCSIN_WEBHOOK_GIVE_UP", "2h", "webhook_give_up_s", 7200.0),
    ("TOCSIN_DB_POOL_SIZE", "4", "db_pool_size", 4),
    ("TOCSIN_DB_MAX_OVERFLOW", "0", "db_max_overflow", 0),
    ("TOCSIN_NO_REUSEPORT", "1", "no_reuseport", True),
    ("TOCSIN_TEST_CLOCK_FILE", "/tmp/tocsin-cfg/clock", "test_clock_file",
     "/tmp/tocsin-cfg/clock"),
]
# Where a command's own flag decides a value, the flag wins over the variable.
FORCED: dict[tuple[str, str], Any] = {("serve --workers 2", "workers"): 2}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No TOCSIN_* setting from the outer environment; databases under tmp_path."""
    for name in Settings.model_fields:
        monkeypatch.delenv(env_name(name), raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("tocsin.settings._data_dir", lambda: tmp_path)


def run_cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[list[Settings], Any]:
    captured: list[Settings] = []
    monkeypatch.setattr(cli, "_run", captured.append)
    result = CliRunner().invoke(cli.app, list(args))
    return captured, result


def settings_of(command: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The Settings ``command`` ends up running with (for --workers: what a worker gets)."""
    if command == "app_from_env":
        seen: list[Settings] = []
        monkeypatch.setattr(tocsin.app, "create_app", lambda s, *a, **k: seen.append(s))
        tocsin.app.app_from_env()
        assert len(seen) == 1
        return seen[0]
    captured, result = run_cli(monkeypatch, *command.split())
    assert result.exit_code == 0, result.output
    (settings,) = captured
    if "--workers" in command:
        in_worker = Settings.from_env(worker_env(settings, 1))
        assert in_worker == settings  # the worker runs with exactly the supervisor's settings
        return in_worker
    return settings


COMMANDS = ["serve", "serve --workers 2", "demo", "app_from_env"]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(("var", "text", "attr", "expected"), ROWS,
                         ids=[r[0] for r in ROWS])
def test_every_variable_reaches_every_command(
    monkeypatch: pytest.MonkeyPatch, command: str, var: str, text: str, attr: str,
    expected: Any,
) -> None:
    monkeypatch.setenv(var, text)
    settings = settings_of(command, monkeypatch)
    assert getattr(settings, attr) == FORCED.get((command, attr), expected)


def test_the_rows_are_every_setting_and_every_documented_variable() -> None:
    assert {r[0] for r in ROWS} == {env_name(f) for f in Settings.model_fields}
    assert {r[2] for r in ROWS} == set(Settings.model_fields)
    table = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"TOCSIN_[A-Z_]+", table))
    client_side = {"TOCSIN_URL", "TOCSIN_API_KEY"}
    assert documented - client_side == {r[0] for r in ROWS}


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    serve = settings_of("serve", monkeypatch)
    assert (serve.host, serve.port, serve.broker_url, serve.workers) == (
        "127.0.0.1", 8000, "memory://", 1)
    assert (serve.heartbeat_s, serve.retention_s, serve.degraded_poll_s, serve.retry_ms) == (
        15.0, 7 * 86400.0, 1.0, 3000)
    assert serve.database_url == f"sqlite+aiosqlite:///{tmp_path / 'tocsin.db'}"
    assert not (serve.dev or serve.demo or serve.api_keys or serve.jwt_secret)
    demo = settings_of("demo", monkeypatch)
    assert demo.dev and demo.demo
    assert demo.database_url == f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_flags_win_over_variables(monkeypatch: pytest.MonkeyPatch, command: str) -> None:
    for var, value in [("TOCSIN_PORT", "9000"), ("TOCSIN_API_KEYS", "env-key-0123456789"),
                       ("TOCSIN_HEARTBEAT", "5s"), ("TOCSIN_CORS_ORIGINS", "http://env.test"),
                       ("TOCSIN_DATABASE_URL", "sqlite:///env.db"), ("TOCSIN_HOST", "::1")]:
        monkeypatch.setenv(var, value)
    captured, result = run_cli(
        monkeypatch, command, "--port", "9100", "--api-key", "a" * 16, "--api-key",
        "b" * 16 + "," + "c" * 16,
        "--heartbeat", "1s", "--cors-origin", "http://flag.test", "--database",
        "sqlite:///flag.db")
    assert result.exit_code == 0, result.output
    (s,) = captured
    assert (s.port, s.api_keys, s.heartbeat_s, s.cors_origins, s.database_url, s.host) == (
        9100, ["a" * 16, "b" * 16, "c" * 16], 1.0, ["http://flag.test"], "sqlite:///flag.db", "::1")


def test_no_dev_flag_wins_over_tocsin_dev(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOCSIN_DEV", "1")
    captured, result = run_cli(monkeypatch, "serve", "--no-dev")
    assert result.exit_code == 0 and captured[0].dev is False


def test_serve_help_shows_every_variable_and_default() -> None:
    out = re.sub(r"[\s│]+", " ", CliRunner().invoke(cli.app, ["serve", "--help"]).output)
    for name in Settings.model_fields:
        assert f"[env: {env_name(name)}]" in out, name
    assert "[default: tocsin.db in the user data dir]" in out
    assert "[default: 8000] [env: TOCSIN_PORT]" in out
    assert "[default: 15s] [env: TOCSIN_HEARTBEAT]" in out
    demo = re.sub(r"[\s│]+", " ", CliRunner().invoke(cli.app, ["demo", "--help"]).output)
    assert "[default: demo.db in the user data dir]" in demo
    assert "[env: TOCSIN_CORS_ORIGINS]" in demo


INVALID = [
    ("TOCSIN_PORT", "eighty"), ("TOCSIN_PORT", "70000"), ("TOCSIN_HEARTBEAT", "soon"),
    ("TOCSIN_RETENTION", "7 weeks"), ("TOCSIN_WORKERS", "0"), ("TOCSIN_LOG_LEVEL", "loud"),
    ("TOCSIN_RETRY_MS", "-1"), ("TOCSIN_API_KEYS", "k"), ("TOCSIN_API_KEYS", K1 + ",short"),
    ("TOCSIN_JWT_SECRET", "s" * 31), ("TOCSIN_METRICS_KEY", "m" * 15),
    ("TOCSIN_VAPID_SUBJECT", "admin@example.com"), ("TOCSIN_VAPID_PRIVATE_KEY", "c2hvcnQ"),
    # an option neither Tocsin nor the driver takes: refused at start, not at the first
    # connection (where it left a node degraded forever, or ignored a typo)
    ("TOCSIN_BROKER_URL", "redis://127.0.0.1:6379/0?backlog=10000"),
    ("TOCSIN_BROKER_URL", "redis://127.0.0.1:6379/0?chanel=tocsin"),
    ("TOCSIN_BROKER_URL", "redis://127.0.0.1:6379/0?ping_interval=0"),
    ("TOCSIN_BROKER_URL", "kafka://127.0.0.1"), ("TOCSIN_BROKER_URL", "memory://?backlog=1"),
    ("TOCSIN_DATABASE_URL", "postgresql+asyncpg://127.0.0.1/db?sslmode=require"),
    ("TOCSIN_DATABASE_URL", "sqlite+aiosqlite:////tmp/t.db?synchronus=normal"),
    ("TOCSIN_DATABASE_URL", "mysql://127.0.0.1/db"),
    ("TOCSIN_DB_POOL_SIZE", "0"), ("TOCSIN_DB_MAX_OVERFLOW", "-1"),
]


# demo forces dev mode on, so it never reads TOCSIN_DEV
@pytest.mark.parametrize(("command", "var", "value"),
                         [("serve", "TOCSIN_DEV", "maybe"),
                          *[(c, v, x) for c in ("serve", "demo") for v, x in INVALID]])
def test_invalid_values_exit_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, command: str, var: str, value: str
) -> None:
    monkeypatch.setenv(var, value)
    captured, result = run_cli(monkeypatch, command)
    assert result.exit_code == 2 and not captured
    shown = " ".join(result.output.split())
    assert var in result.output
    if var in ("TOCSIN_API_KEYS", "TOCSIN_JWT_SECRET", "TOCSIN_METRICS_KEY",
               "TOCSIN_VAPID_PRIVATE_KEY"):
        assert repr(value) not in shown  # a rejected secret is never echoed
    else:
        assert repr(value) in shown


@pytest.mark.parametrize("args", [
    ["serve", "--api-key", "k"], ["serve", "--jwt-secret", "x"], ["demo", "--jwt-secret", "x"],
    ["serve", "--metrics-key", "m"], ["token", "alice", "--jwt-secret", "x"],
])
def test_short_keys_and_secrets_are_refused_by_every_command(
    monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    captured, result = run_cli(monkeypatch, *args)
    assert result.exit_code == 2 and not captured
    assert "at least" in result.output and args[-2] in result.output


def test_invalid_flag_names_flag_and_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    captured, result = run_cli(monkeypatch, "serve", "--heartbeat", "soon")
    assert result.exit_code == 2 and not captured
    assert "TOCSIN_HEARTBEAT / --heartbeat" in result.output


def test_a_url_is_echoed_without_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    captured, result = run_cli(monkeypatch, "serve", "--broker",
                               "redis://:hunter2-secret@127.0.0.1:6379/0?backlog=5")
    assert result.exit_code == 2 and not captured
    shown = " ".join(result.output.split())
    assert "TOCSIN_BROKER_URL / --broker" in shown and "'backlog'" in shown
    assert "hunter2" not in shown


@pytest.mark.parametrize("url", [
    "redis://127.0.0.1:6379/0?channel=c&ping_interval=250ms&socket_keepalive=true",
    "rediss://127.0.0.1:6379/0?ssl_cert_reqs=none", "unix:///run/redis.sock?db=1",
])
def test_good_broker_urls_pass(url: str) -> None:
    assert Settings(broker_url=url).broker_url == url


@pytest.mark.parametrize("url", [
    "postgresql+asyncpg://u:p@h/db?schema=s&ssl=require&prepared_statement_cache_size=0",
    "postgresql://u@h/db", "sqlite:////tmp/t.db", "sqlite+aiosqlite:///t.db?synchronous=normal",
])
def test_good_database_urls_pass(url: str) -> None:
    assert Settings(database_url=url).database_url == url


def test_app_from_env_names_the_bad_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOCSIN_DEGRADED_POLL", "often")
    with pytest.raises(SystemExit, match="TOCSIN_DEGRADED_POLL"):
        tocsin.app.app_from_env()


def test_from_env_reads_only_the_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOCSIN_PORT", "1234")
    assert Settings.from_env({}).port == 8000
    assert Settings.from_env({"TOCSIN_PORT": "99"}).port == 99
    assert Settings.from_env().port == Settings().port == 1234


def test_to_env_round_trips_every_field(tmp_path: Path) -> None:
    full = Settings(
        host="::", port=0, database_url="postgresql+asyncpg://u:p@h/db?schema=x",
        broker_url="redis://:pw@r:6379/1?channel=c", api_keys=[K1, "k 2" * 8], jwt_secret="j" * 32,
        heartbeat_s=0.1 + 0.2, retry_ms=0, retention_s=1e-5, degraded_poll_s=1e17,
        dev=True, workers=7, demo=True, cors_origins=["http://x.test"], log_level="trace",
    )
    for s in (Settings.from_env({}), full):
        back = Settings.from_env(s.to_env())
        assert back == s
        for name in Settings.model_fields:
            assert getattr(back, name) == getattr(s, name), name
    assert set(full.to_env()) == {env_name(f) for f in Settings.model_fields}
    assert parse_duration(full.to_env()["TOCSIN_HEARTBEAT"]) == 0.1 + 0.2


def test_token_reads_the_secret_through_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    import jwt

    monkeypatch.setenv("TOCSIN_JWT_SECRET", "e" * 32)
    result = CliRunner().invoke(cli.app, ["token", "alice"])
    assert result.exit_code == 0, result.output
    assert jwt.decode(result.stdout.strip(), "e" * 32, algorithms=["HS256"])["sub"] == "alice"


def _wait_for(url: str, proc: subprocess.Popen[bytes], get: Callable[[], httpx.Response],
              timeout: float = 30.0) -> httpx.Response:
    def answer() -> list[httpx.Response]:  # a list: a response may be falsy
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}")
        try:
            return [get()]
        except httpx.HTTPError:
            return []

    return wait_until(answer, timeout, f"{url} to answer")[0]


def test_serve_configured_by_variables_alone(tmp_path: Path) -> None:
    from tests.support.server import free_port

    port = free_port()
    env = {**os.environ, "TOCSIN_PORT": str(port), "TOCSIN_API_KEYS": f"{K1},{K2}",
           "TOCSIN_JWT_SECRET": "z" * 32, "TOCSIN_CORS_ORIGINS": "http://example.test",
           "TOCSIN_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/e.db"}
    url = f"http://127.0.0.1:{port}"
    with (tmp_path / "server.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "tocsin", "serve"], env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        origin = {"Origin": "http://example.test"}
        r = _wait_for(url, proc, lambda: httpx.get(url + "/healthz", headers=origin))
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "http://example.test"
        stats = httpx.get(url + "/api/stats", headers={**origin, "Authorization": f"Bearer {K2}"})
        assert stats.status_code == 200
        assert stats.headers["access-control-allow-origin"] == "http://example.test"
        other = httpx.get(url + "/healthz", headers={"Origin": "http://other.test"})
        assert "access-control-allow-origin" not in other.headers
    except AssertionError:
        print((tmp_path / "server.log").read_text(errors="replace"))
        raise
    finally:
        proc.terminate()
        proc.wait(15)
