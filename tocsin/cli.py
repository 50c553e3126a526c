"""The ``tocsin`` command: serve, demo, migrate, token, send, bench."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Optional

import httpx
import typer
from rich.console import Console

from tocsin._version import __version__
from tocsin.config import (
    DEFAULT_BROKER_URL,
    DEFAULT_HOST,
    DEFAULT_PORT,
    Settings,
    default_database_url,
    parse_duration,
    redact_url,
)

app = typer.Typer(
    name="tocsin",
    help="Tocsin: real-time notifications for web apps (durable inboxes, topic feeds, SSE).",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        print(f"tocsin {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        Optional[bool],  # noqa: UP045 - typer needs Optional here
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = None,
) -> None:
    """Tocsin: real-time notifications for web apps."""


Host = Annotated[str, typer.Option(envvar="TOCSIN_HOST", help="Interface to bind.")]
Port = Annotated[int, typer.Option(envvar="TOCSIN_PORT", help="Port to bind.")]
Database = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option("--database", envvar="TOCSIN_DATABASE_URL",
                 help="sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db "
                      "[default: tocsin.db in the user data dir]"),
]


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


@app.command()
def serve(
    host: Host = DEFAULT_HOST,
    port: Port = DEFAULT_PORT,
    database: Database = None,
    broker: Annotated[str, typer.Option(envvar="TOCSIN_BROKER_URL",
                                        help="memory:// (one process) or redis://host:6379/0")]
    = DEFAULT_BROKER_URL,
    api_key: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        "--api-key", help="Publisher API key (repeatable; env TOCSIN_API_KEYS, comma-separated)")]
    = None,
    jwt_secret: Annotated[Optional[str], typer.Option(  # noqa: UP045
        envvar="TOCSIN_JWT_SECRET", help="Secret that signs subscriber tokens (HS256).")] = None,
    heartbeat: Annotated[str, typer.Option(envvar="TOCSIN_HEARTBEAT",
                                           help="Ping interval on idle streams.")] = "15s",
    retention: Annotated[str, typer.Option(envvar="TOCSIN_RETENTION",
                                           help="How long events stay replayable.")] = "7d",
    retry_ms: Annotated[int, typer.Option(envvar="TOCSIN_RETRY_MS",
                                          help="SSE retry: sent to clients.")] = 3000,
    degraded_poll: Annotated[str, typer.Option(
        envvar="TOCSIN_DEGRADED_POLL", help="Store polling interval while the broker is down.")]
    = "1s",
    workers: Annotated[int, typer.Option(envvar="TOCSIN_WORKERS", min=1,
                                         help="Worker processes sharing the port.")] = 1,
    cors_origin: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        help="Allow this browser origin (repeatable).")] = None,
    dev: Annotated[bool, typer.Option(
        help="Development mode: generate and print a key and secret if none is given.")]
    = False,
    log_level: Annotated[str, typer.Option(envvar="TOCSIN_LOG_LEVEL")] = "info",
) -> None:
    """Run the Tocsin server."""
    keys = list(api_key or [])
    keys += [k.strip() for k in os.environ.get("TOCSIN_API_KEYS", "").split(",") if k.strip()]
    settings = Settings(
        host=host, port=port, database_url=database or default_database_url(),
        broker_url=broker, api_keys=keys, jwt_secret=jwt_secret or "",
        heartbeat_s=_duration(heartbeat), retention_s=_duration(retention), retry_ms=retry_ms,
        degraded_poll_s=_duration(degraded_poll), workers=workers,
        cors_origins=list(cors_origin or []), dev=dev, log_level=log_level,
    )
    _run(settings)


def _run(settings: Settings) -> None:
    if not settings.api_keys or not settings.jwt_secret:
        if not settings.dev:
            console.print("[red]error:[/] give --api-key and --jwt-secret "
                          "(or TOCSIN_API_KEYS / TOCSIN_JWT_SECRET), or use --dev.")
            raise typer.Exit(2)
        if not settings.api_keys:
            settings.api_keys = ["dev-" + secrets.token_urlsafe(18)]
        if not settings.jwt_secret:
            settings.jwt_secret = secrets.token_urlsafe(32)
        console.print(f"[yellow]dev mode[/]: publisher API key [bold]{settings.api_keys[0]}"
                      f"[/]  JWT secret [bold]{settings.jwt_secret}[/]")
    console.print(f"tocsin {__version__} on http://{settings.host}:{settings.port} "
                  f"(database {redact_url(settings.database_url)}, "
                  f"broker {redact_url(settings.broker_url)}, workers {settings.workers})")
    if settings.workers > 1:
        from tocsin.supervisor import run_workers

        run_workers(settings)
    else:
        from tocsin.server import run_single

        run_single(settings)



@app.command()
def demo(
    host: Host = DEFAULT_HOST,
    port: Port = DEFAULT_PORT,
    database: Database = None,
) -> None:
    """Run the demo: the server (SQLite + in-process broker, dev keys) and a demo page."""
    if database is None:
        from platformdirs import user_data_dir

        data = Path(user_data_dir("tocsin", appauthor=False))
        data.mkdir(parents=True, exist_ok=True)
        database = f"sqlite+aiosqlite:///{data / 'demo.db'}"
    settings = Settings(host=host, port=port, database_url=database, dev=True, demo=True,
                        heartbeat_s=15.0)
    console.print(f"[green]Open http://{host}:{port}/ in two windows and pick two users.[/]")
    _run(settings)


@app.command()
def migrate(database: Database = None) -> None:
    """Create or upgrade the database schema (serve also does this at start)."""
    from tocsin.store import store_from_url

    async def run() -> None:
        store = store_from_url(database or default_database_url())
        await store.open()
        await store.close()

    asyncio.run(run())
    console.print("[green]schema is at the newest migration[/]")


@app.command()
def token(
    user: Annotated[str, typer.Argument(help="User id (the token's sub).")],
    topic: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        "--topic", help="Topic pattern the user may read (repeatable), e.g. team:*")] = None,
    ttl: Annotated[str, typer.Option(help="Lifetime, e.g. 1h, 7d.")] = "1h",
    jwt_secret: Annotated[str, typer.Option(envvar="TOCSIN_JWT_SECRET",
                                            help="The server's JWT secret.")] = "",
) -> None:
    """Mint a subscriber token for USER."""
    from tocsin.auth import mint_token

    if not jwt_secret:
        console.print("[red]error:[/] give --jwt-secret or TOCSIN_JWT_SECRET")
        raise typer.Exit(2)
    tok, _ = mint_token(jwt_secret, user, topic, int(_duration(ttl)))
    print(tok)


@app.command()
def send(
    to: Annotated[list[str], typer.Option("--to", help="Recipient user id (repeatable).")],
    title: Annotated[str, typer.Option(help="Title (at most 200 characters).")],
    body: Annotated[str, typer.Option(help="Body text.")] = "",
    priority: Annotated[str, typer.Option(help="urgent, high, medium or low.")] = "medium",
    type: Annotated[str, typer.Option("--type", help="Notification type.")] = "message",
    url: Annotated[Optional[str], typer.Option(help="Link (http/https).")] = None,  # noqa: UP045
    group_key: Annotated[Optional[str], typer.Option(help="Group key.")] = None,  # noqa: UP045
    server: Annotated[str, typer.Option(envvar="TOCSIN_URL", help="Server base URL.")]
    = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}",
    api_key: Annotated[str, typer.Option(envvar="TOCSIN_API_KEY", help="Publisher key.")] = "",
) -> None:
    """Publish a notification through the HTTP API."""
    from tocsin.client import Publisher, TocsinAPIError

    extra: dict[str, object] = {}
    if url:
        extra["url"] = url
    if group_key:
        extra["group_key"] = group_key
    try:
        with Publisher(server, api_key) as pub:
            ids = pub.publish(to, title, type=type, body=body, priority=priority, **extra)
    except httpx.HTTPError as exc:
        console.print(f"[red]error:[/] cannot reach {server}: {exc}")
        raise typer.Exit(1) from exc
    except TocsinAPIError as exc:
        console.print(f"[red]error {exc.status}:[/] {exc.code}: {exc.message}")
        raise typer.Exit(1) from exc
    for user, nid in ids.items():
        print(f"{user}\t{nid}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(ctx: typer.Context) -> None:
    """Run the benchmark harness (python -m bench, from a source checkout)."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "bench" / "__main__.py").exists():
        console.print("[red]error:[/] the benchmark lives in the source checkout (bench/)")
        raise typer.Exit(2)
    raise typer.Exit(subprocess.call([sys.executable, "-m", "bench", *ctx.args], cwd=root))
