"""The ``tocsin`` command: serve, demo, migrate, token, vapid, send, listen, trail,
bench."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from tocsin import logs
from tocsin._version import __version__
from tocsin.channels.registry import CHANNELS
from tocsin.config import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    Settings,
    default_text,
    demo_database_url,
    describe_error,
    env_name,
    redact_url,
)
from tocsin.units import parse_duration
from tocsin.webhooks.settings import FLAGS as EVENT_WEBHOOK_FLAGS
from tocsin.webhooks.settings import HELP_PANEL as EVENT_WEBHOOK_HELP_PANEL

app = typer.Typer(
    name="tocsin",
    help="Tocsin: real-time notifications for web apps (durable inboxes, topic feeds, SSE).",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
# soft_wrap: a message is one line however long; rich otherwise breaks it at 80
# columns when stderr is not a terminal, and a script reading stderr gets half a line.
console = Console(stderr=True, soft_wrap=True)


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


# -- flags laid on top of Settings -------------------------------------------------------

FLAGS: dict[str, str] = {}
"""Settings field -> its flag (for error messages)."""
HELP_PANELS = {field: c.help_panel for c in CHANNELS if c.help_panel
               for field, _, _ in c.flags} | {
    field: EVENT_WEBHOOK_HELP_PANEL for field, _, _ in EVENT_WEBHOOK_FLAGS}
"""Settings shown in a panel of their own in ``--help`` (each panel is a table whose
columns fit its own flags: a long flag does not squeeze every other help text)."""


def setting(field: str, flag: str, *, default: str | None = None) -> Any:
    """A typer option for the :class:`Settings` field ``field``: its help, default and
    variable come from the field. The option's value is None when not given, and typer
    reads no variable itself: :class:`Settings` fills what no flag gave."""
    FLAGS.setdefault(field, flag.split("/")[0])
    info = Settings.model_fields[field]
    text = (f"{info.description} [default: {default or default_text(field)}] "
            f"[env: {env_name(field)}]")
    return typer.Option(flag, help=escape(text), show_default=False,
                        rich_help_panel=HELP_PANELS.get(field))


def build_settings(given: dict[str, Any], *, demo: bool = False) -> Settings:
    """``Settings(**flags that were given)``, the rest from ``TOCSIN_*``; ``demo`` forces
    demo and dev mode on and uses the demo database unless one was given."""
    values = {k: v for k, v in given.items() if v is not None}
    if demo:
        values.update(demo=True, dev=True)
        if "TOCSIN_CONSOLE" not in os.environ:  # the demo shows the operators' console too
            values.setdefault("console", True)
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        console.print(f"[red]error:[/] {escape(describe_error(exc, FLAGS))}")
        raise typer.Exit(2) from None
    if demo and "database_url" not in settings.model_fields_set:
        settings.database_url = demo_database_url()
    return settings


Database = Annotated[Optional[str], setting("database_url", "--database")]  # noqa: UP045
JwtSecret = Annotated[Optional[str], setting("jwt_secret", "--jwt-secret")]  # noqa: UP045

CORE_FLAGS: list[tuple[str, str, Any]] = [
    # (Settings field, flag, what the flag takes: durations are text such as 15s)
    ("host", "--host", str), ("port", "--port", int), ("database_url", "--database", str),
    ("broker_url", "--broker", str), ("api_keys", "--api-key", list[str]),
    ("jwt_secret", "--jwt-secret", str), ("heartbeat_s", "--heartbeat", str),
    ("retention_s", "--retention", str), ("retry_ms", "--retry-ms", int),
    ("degraded_poll_s", "--degraded-poll", str), ("workers", "--workers", int),
    ("cors_origins", "--cors-origin", list[str]), ("dev", "--dev/--no-dev", bool),
    ("demo", "--demo/--no-demo", bool), ("console", "--console", bool),
    ("log_level", "--log-level", str),
    ("rate_topic_posts", "--rate-topic-posts", str), ("rate_reads", "--rate-reads", str),
    ("rate_publish", "--rate-publish", str),
    ("max_user_streams", "--max-user-streams", int),
    ("max_header_bytes", "--max-header-bytes", int),
    ("header_timeout_s", "--header-timeout", str),
    ("ws_write_timeout_s", "--ws-write-timeout", str),
    ("metrics_key", "--metrics-key", str),
    ("timer_poll_s", "--timer-poll", str), ("test_clock_file", "--test-clock-file", str),
    ("group_window_s", "--group-window", str),
    ("presence_interval_s", "--presence-interval", str),
    ("db_pool_size", "--db-pool-size", int), ("db_max_overflow", "--db-max-overflow", int),
    ("no_reuseport", "--no-reuseport/--reuseport", bool),
]
"""The core flags of ``serve`` and ``demo``: one per core setting."""
SERVER_FLAGS: list[tuple[str, str, Any]] = list({f[0]: f for f in [
    *CORE_FLAGS, *EVENT_WEBHOOK_FLAGS, *(flag for c in CHANNELS for flag in c.flags)]
}.values())
"""The flags of ``serve`` and ``demo``: one per setting, the core's, event webhooks',
then each registered channel's (a setting two of them share, ``--webhook-allow-private``,
is one flag)."""
DEMO_FORCED = ("dev", "demo")
DEMO_DATABASE_TEXT = "demo.db in the user data dir"


def _server_command(name: str, doc: str, *, demo: bool) -> None:
    """Register ``serve`` or ``demo``: a command whose parameters are the settings' flags
    (named as the fields) and that runs ``build_settings(flags given)``."""
    annotated: Any = Annotated
    params = [
        inspect.Parameter(field, inspect.Parameter.KEYWORD_ONLY, default=None,
                          annotation=annotated[Optional[kind], setting(  # noqa: UP045
                              field, flag,
                              default=DEMO_DATABASE_TEXT if demo and field == "database_url"
                              else None)])
        for field, flag, kind in SERVER_FLAGS if not (demo and field in DEMO_FORCED)
    ]

    def command(**flags: Any) -> None:
        _run(build_settings(flags, demo=demo))

    command.__name__ = command.__qualname__ = name
    command.__doc__ = doc
    setattr(command, "__signature__", inspect.Signature(params, return_annotation=None))  # noqa: B010
    app.command(name)(command)


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


_server_command("serve", "Run the Tocsin server. Every flag has a TOCSIN_* variable; a "
                "flag wins over its variable.", demo=False)


def _run(settings: Settings) -> None:
    given = bool(settings.api_keys and settings.jwt_secret)
    if settings.demo and settings.dev:
        from tocsin.demo import keep_dev_credentials

        keep_dev_credentials(settings)  # kept with the demo database: restarts keep tokens valid
    if not settings.api_keys or not settings.jwt_secret:
        if not settings.dev:
            console.print("[red]error:[/] give --api-key and --jwt-secret "
                          "(or TOCSIN_API_KEYS / TOCSIN_JWT_SECRET), or use --dev.")
            raise typer.Exit(2)
        if not settings.api_keys:
            settings.api_keys = ["dev-" + secrets.token_urlsafe(18)]
        if not settings.jwt_secret:
            settings.jwt_secret = secrets.token_urlsafe(32)
    if not given:
        # One value per line, never wrapped (they are copied from here).
        console.print("[yellow]dev mode[/]:", soft_wrap=True)
        console.print(f"  publisher API key  [bold]{settings.api_keys[0]}[/]", soft_wrap=True)
        console.print(f"  JWT secret         [bold]{settings.jwt_secret}[/]", soft_wrap=True)
    if settings.demo:
        from tocsin.demo import embed_snippet

        base = f"http://{settings.host}:{settings.port}"
        console.print(f"[green]Open {base}/ in two windows and pick two users.[/]", soft_wrap=True)
        console.print("To embed it in a page of your own (start with --cors-origin "
                      "<that page's origin>):", soft_wrap=True)
        print(embed_snippet(base), file=sys.stderr, flush=True)
    # a log line like every other (a time and its writer), not a bare print
    logs.configure(settings.log_level, "supervisor" if settings.workers > 1 else None)
    logging.getLogger("tocsin").info(
        "tocsin %s on http://%s:%d (database %s, broker %s, workers %d)", __version__,
        settings.host, settings.port, redact_url(settings.database_url),
        redact_url(settings.broker_url), settings.workers)
    if settings.demo:
        from tocsin.demo import exposure_warning

        warning = exposure_warning(settings.host)
        if warning is not None:  # the last line before the server's own: hard to miss
            console.print(f"[bold red]{escape(warning)}[/]", soft_wrap=True)
    if settings.workers > 1:
        from tocsin.supervisor import run_workers

        run_workers(settings)
    else:
        from tocsin.server import run_single

        run_single(settings)


_server_command("demo", "Run the demo: the server (dev keys unless given) and a demo page "
                "at /. Takes the flags and TOCSIN_* variables of serve.", demo=True)


@app.command()
def migrate(database_url: Database = None) -> None:
    """Create or upgrade the database schema (serve also does this at start)."""
    from tocsin.store import store_from_url
    from tocsin.store.sql import SqlStore

    url = build_settings({"database_url": database_url}).database_url

    async def run() -> SqlStore:
        store = store_from_url(url)
        assert isinstance(store, SqlStore)
        try:
            await store.open()
        finally:
            with contextlib.suppress(Exception):  # nothing opened: nothing to close
                await store.close()
        return store

    try:
        store = asyncio.run(run())
    except Exception as exc:
        console.print(f"[red]error:[/] cannot migrate {escape(redact_url(url))}: "
                      f"{escape(_root_cause(exc))}")
        raise typer.Exit(1) from None
    applied = store.migrated
    if store.newer_schema is not None:
        console.print(f"[yellow]the schema is at revision {escape(store.newer_schema)}, "
                      "newer than this release knows: nothing applied[/]")
    elif applied:
        console.print(f"[green]applied {len(applied)} migration"
                      f"{'s' if len(applied) > 1 else ''}: {', '.join(applied)}; the schema "
                      "is at the newest migration[/]")
    else:
        console.print("[green]already at the newest migration (nothing applied)[/]")


def _root_cause(exc: BaseException) -> str:
    """The innermost cause of ``exc`` as one line, e.g. ``ConnectionRefusedError: [Errno
    111] Connect call failed ('127.0.0.1', 1)``."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    text = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {text}"


@app.command()
def token(
    user: Annotated[str, typer.Argument(help="User id (the token's sub).")],
    topic: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        "--topic", help="Topic pattern the user may read (repeatable), e.g. team:*")] = None,
    ttl: Annotated[str, typer.Option(help="Lifetime, e.g. 1h, 7d.")] = "1h",
    jwt_secret: JwtSecret = None,
) -> None:
    """Mint a subscriber token for USER."""
    from tocsin.auth import mint_token

    jwt_secret = build_settings({"jwt_secret": jwt_secret}).jwt_secret
    if not jwt_secret:
        console.print("[red]error:[/] give --jwt-secret or TOCSIN_JWT_SECRET")
        raise typer.Exit(2)
    if not 1 <= len(user) <= 200:  # what POST /api/tokens takes (api/models.py: TokenIn)
        console.print("[red]error:[/] USER must be 1 to 200 characters")
        raise typer.Exit(2)
    tok, _ = mint_token(jwt_secret, user, topic, _token_ttl(ttl))
    print(tok)


VapidKey = Annotated[Optional[str],  # noqa: UP045
                     setting("vapid_private_key", "--vapid-private-key")]


@app.command()
def vapid(database_url: Database = None, vapid_private_key: VapidKey = None) -> None:
    """Print the server's VAPID public key (base64url, what the browser's
    PushManager.subscribe() takes as applicationServerKey): derived from
    --vapid-private-key, else the one kept in the database (created there if it has
    none yet, as the server's first start would)."""
    from tocsin.channels.push.vapid import load_private_key, public_text

    settings = build_settings({"database_url": database_url,
                               "vapid_private_key": vapid_private_key})
    if settings.vapid_private_key:
        print(public_text(load_private_key(settings.vapid_private_key)))
        return

    async def run() -> str:
        from tocsin.channels.push.store import SqlPushStore
        from tocsin.channels.push.vapid import stored_key
        from tocsin.ids import now_ms
        from tocsin.store import store_from_url
        from tocsin.store.sql import SqlStore

        store = store_from_url(settings.database_url)
        assert isinstance(store, SqlStore)
        await store.open()
        try:
            return public_text(await stored_key(SqlPushStore(store.db), now_ms()))
        finally:
            await store.close()

    print(asyncio.run(run()))


MAX_TOKEN_TTL_S = 30 * 24 * 3600
"""The longest token ``POST /api/tokens`` mints (api/models.py: TokenIn)."""


def _token_ttl(text: str) -> int:
    """A token lifetime in whole seconds, refused where the API refuses it."""
    seconds = int(_duration(text))
    if not 1 <= seconds <= MAX_TOKEN_TTL_S:
        console.print(f"[red]error:[/] --ttl must be from 1s to 30d, not {escape(text)}")
        raise typer.Exit(2)
    return seconds


ServerUrl = Annotated[str, typer.Option(
    envvar="TOCSIN_URL", show_envvar=True,
    help="Server base URL (a client-side variable, not a server setting).")]
ClientApiKey = Annotated[str, typer.Option(
    envvar="TOCSIN_API_KEY", show_envvar=True,
    help="Publisher key (a client-side variable: one of the server's TOCSIN_API_KEYS).")]
DEFAULT_SERVER_URL = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
PRIORITIES = ("urgent", "high", "medium", "low")


def _need_api_key(api_key: str) -> None:
    """Without a key nothing can work: say so at once (not after the retries)."""
    if not api_key.strip():
        console.print("[red]error:[/] no API key: set TOCSIN_API_KEY or pass --api-key")
        raise typer.Exit(2)


@app.command()
def send(
    to: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        "--to", help="Recipient user id (repeatable).")] = None,
    title: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="Title (at most 200 characters).")] = None,
    body: Annotated[str, typer.Option(help="Body text.")] = "",
    priority: Annotated[str, typer.Option(help="urgent, high, medium or low.")] = "medium",
    type: Annotated[str, typer.Option("--type", help="Notification type.")] = "message",
    url: Annotated[Optional[str], typer.Option(help="Link (http/https).")] = None,  # noqa: UP045
    group_key: Annotated[Optional[str], typer.Option(help="Group key.")] = None,  # noqa: UP045
    server: ServerUrl = DEFAULT_SERVER_URL,
    api_key: ClientApiKey = "",
) -> None:
    """Publish a notification through the HTTP API. Without --to and --title, reads
    JSON from stdin: one object with the API's fields ({"recipients": [...], "title":
    ...}), a JSON array of them, or JSON lines, one notification a line. Prints
    "user<TAB>id" lines."""
    from tocsin.client import Publisher, TocsinAPIError, TocsinConnectionError
    from tocsin.client.commands import InputError, Item, read_notifications

    _need_api_key(api_key)
    if priority not in PRIORITIES:  # refused here, like --transport: exit 2, nothing sent
        raise typer.BadParameter("urgent, high, medium or low", param_hint="--priority")
    if to is None and title is None:
        if sys.stdin.isatty():
            console.print("reading notifications from stdin (JSON; Ctrl-D to end, or give "
                          "--to and --title)", style="dim")
        try:
            batch = read_notifications(sys.stdin.read())
        except InputError as exc:
            console.print(f"[red]error:[/] stdin {escape(str(exc))}")
            raise typer.Exit(2) from None
    elif to is None or title is None:
        console.print("[red]error:[/] give both --to and --title, or neither (JSON on stdin)")
        raise typer.Exit(2)
    else:
        batch = [Item("the command line", {
            "recipients": to, "title": title, "type": type, "body": body,
            "priority": priority, "url": url, "group_key": group_key})]
    where = ""
    try:
        with Publisher(server, api_key) as pub:
            for item in batch:
                where = f"stdin {item.where}: " if len(batch) > 1 or to is None else ""
                result = pub.publish(**item.fields)
                for user, nid in result.ids.items():
                    print(f"{user}\t{nid}", flush=True)
                for user, why in result.skipped.items():
                    console.print(f"{escape(user)}: not delivered ({escape(why)})",
                                  style="dim")
    except TocsinConnectionError as exc:
        console.print(f"[red]error:[/] {escape(where)}{escape(str(exc))}")
        raise typer.Exit(1) from exc
    except TocsinAPIError as exc:
        field = f" ({exc.field})" if exc.field else ""
        console.print(f"[red]error {exc.status}:[/] {escape(where)}{exc.code}{field}: "
                      f"{escape(exc.message)}")
        raise typer.Exit(1) from exc


@app.command()
def listen(
    user: Annotated[str, typer.Option(help="Whose inbox (and as whom to read --topic).")],
    topic: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="Follow this topic feed instead of the inbox.")] = None,
    since: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="Start after this event id (0: all retained history).",
        show_default="live only")] = None,
    ttl: Annotated[str, typer.Option(help="Lifetime of each minted token, e.g. 1h.")] = "1h",
    transport: Annotated[str, typer.Option(help="sse or ws (WebSocket).")] = "sse",
    json_lines: Annotated[Optional[bool], typer.Option(  # noqa: UP045
        "--json/--pretty", help="Output format.",
        show_default="pretty on a terminal, JSON lines otherwise")] = None,
    server: ServerUrl = DEFAULT_SERVER_URL,
    api_key: ClientApiKey = "",
) -> None:
    """Print a stream as it arrives, resuming across disconnects and server restarts
    (each retry said on stderr). Mints the user's token through the API with the
    publisher key, and a new one before each expires. Ctrl-C stops."""
    from tocsin.client import TocsinAPIError
    from tocsin.client.commands import listen as run_listen
    from tocsin.client.commands import printer, status_printer, stdout_is_terminal

    _need_api_key(api_key)
    if transport not in ("sse", "ws"):
        raise typer.BadParameter("sse or ws", param_hint="--transport")
    seconds = _token_ttl(ttl)
    pretty = stdout_is_terminal() if json_lines is None else not json_lines
    show = printer(sys.stdout, pretty)
    try:
        asyncio.run(run_listen(server, api_key, user, topic=topic, since=since, ttl=seconds,
                               transport="ws" if transport == "ws" else "sse", show=show,
                               on_status=status_printer(sys.stderr)))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    except TocsinAPIError as exc:
        console.print(f"[red]error {exc.status}:[/] {exc.code}: {escape(exc.message)}")
        raise typer.Exit(1) from exc


@app.command()
def trail(
    what: Annotated[str, typer.Argument(help="A notification id or an idempotency key.")],
    json_out: Annotated[Optional[bool], typer.Option(  # noqa: UP045
        "--json/--pretty", help="Output format.",
        show_default="pretty on a terminal, JSON otherwise")] = None,
    server: ServerUrl = DEFAULT_SERVER_URL,
    api_key: ClientApiKey = "",
) -> None:
    """What happened to a notification, per recipient: stored, the attention decision,
    live delivery, read state, each channel's outcome (docs/trail.md). Given a key, the
    trails of every notification that publish created."""
    from tocsin.client import Publisher, TocsinAPIError, TocsinConnectionError
    from tocsin.client.commands import fetch_trail, print_trail, stdout_is_terminal

    _need_api_key(api_key)
    pretty = stdout_is_terminal() if json_out is None else not json_out
    try:
        with Publisher(server, api_key) as pub:
            body = fetch_trail(pub, what)
    except TocsinConnectionError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    except TocsinAPIError as exc:
        console.print(f"[red]error {exc.status}:[/] {exc.code}: {escape(exc.message)}")
        raise typer.Exit(1) from exc
    print_trail(sys.stdout, body, pretty)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(ctx: typer.Context) -> None:
    """Run the benchmark harness (python -m bench, from a source checkout)."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "bench" / "__main__.py").exists():
        console.print("[red]error:[/] the benchmark lives in the source checkout (bench/)")
        raise typer.Exit(2)
    raise typer.Exit(subprocess.call([sys.executable, "-m", "bench", *ctx.args], cwd=root))
