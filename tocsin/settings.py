"""The core settings: everything but the channels' (``tocsin/config.py`` composes
``Settings`` from these and each registered channel's mixin).

:class:`CoreSettings` is a pydantic-settings class: ``Settings(**values)`` takes the given
values (the CLI passes the flags that were given) and fills every other field from
its ``TOCSIN_*`` variable, else from its named default below. Each field's
``description`` is its help text; the CLI builds its flags and help from the fields
(:func:`env_name`, :func:`default_text`), so flags, variables and help cannot drift.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

from tocsin.redis_url import check_url as check_redis_url
from tocsin.units import OFF, format_duration, parse_duration, parse_rate
from tocsin.url_options import ValueCheck, check_options, parameters

ENV_PREFIX = "TOCSIN_"

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_BROKER_URL = "memory://"
DEFAULT_HEARTBEAT_S = 15.0
DEFAULT_RETRY_MS = 3000
DEFAULT_RETENTION_S = 7 * 24 * 3600
DEFAULT_DEGRADED_POLL_S = 1.0
DEFAULT_WORKERS = 1
DEFAULT_LOG_LEVEL = "info"
DEFAULT_RATE_TOPIC_POSTS = "10/s:50"
DEFAULT_RATE_READS = "20/s:100"
DEFAULT_RATE_PUBLISH = "off"
DEFAULT_MAX_USER_STREAMS = 100
DEFAULT_MAX_HEADER_BYTES = 64 * 1024
DEFAULT_HEADER_TIMEOUT_S = 10.0
DEFAULT_WS_WRITE_TIMEOUT_S = 30.0
DEFAULT_DATABASE_TEXT = "tocsin.db in the user data dir"
DEFAULT_METRICS_KEY = ""
DEFAULT_TIMER_POLL_S = 1.0
DEFAULT_PRESENCE_INTERVAL_S = 10.0
DEFAULT_DB_POOL_SIZE = 10
DEFAULT_DB_MAX_OVERFLOW = 20
MIN_KEY_CHARS = 16
"""Shortest API key (and metrics key) accepted: a short key can be guessed."""
MIN_SECRET_CHARS = 32
"""Shortest JWT secret accepted (HS256: whoever guesses it mints any user's token)."""
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def _data_dir() -> Path:
    from platformdirs import user_data_dir

    data = Path(user_data_dir("tocsin", appauthor=False))
    data.mkdir(parents=True, exist_ok=True)
    return data


def default_database_url() -> str:
    """``./tocsin.db`` if it exists (or the user data dir is unusable), else the data dir."""
    local = Path("tocsin.db")
    if local.exists():
        return f"sqlite+aiosqlite:///{local.resolve()}"
    try:
        return f"sqlite+aiosqlite:///{_data_dir() / 'tocsin.db'}"
    except OSError:
        return f"sqlite+aiosqlite:///{local.resolve()}"


def demo_database_url() -> str:
    """The demo's own database: ``demo.db`` in the user data dir."""
    return f"sqlite+aiosqlite:///{_data_dir() / 'demo.db'}"


def redact_url(url: str) -> str:
    """``scheme://user:secret@host/db`` -> ``scheme://host/db``: safe to print or serve."""
    scheme, sep, rest = url.partition("://")
    return scheme + sep + rest.rpartition("@")[2] if "@" in rest else url


SQLITE_SYNC_MODES = ("off", "normal", "full", "extra")
ASYNCPG_DIALECT_OPTIONS = frozenset({"prepared_statement_cache_size",
                                     "prepared_statement_name_func"})
"""Options SQLAlchemy's asyncpg dialect takes off the URL before ``asyncpg.connect``."""
ASYNCPG_NOT_OPTIONS = frozenset({"dsn", "loop", "connection_class", "record_class"})
"""Parameters of ``asyncpg.connect`` a URL must not set (SQLAlchemy or Tocsin do)."""
_PG_SCHEMA = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _sync_mode(name: str, value: str) -> None:
    if value.lower() not in SQLITE_SYNC_MODES:
        raise ValueError(f"{name} must be one of {', '.join(SQLITE_SYNC_MODES)}")


def _pg_schema(name: str, value: str) -> None:
    if not _PG_SCHEMA.match(value):
        raise ValueError(f"invalid schema name {value!r}")


SQLITE_OPTIONS: dict[str, ValueCheck | None] = {"synchronous": _sync_mode}
"""What a SQLite URL may carry: Tocsin's own ``synchronous`` (``store/sqlite.py``). The
driver's other options would be dropped with a warning at best, so a typo of this one
(``?synchronus=normal``) would silently keep the default."""
POSTGRES_OPTIONS: dict[str, ValueCheck | None] = {
    "schema": _pg_schema, **dict.fromkeys(ASYNCPG_DIALECT_OPTIONS)}
"""Tocsin's own option of a PostgreSQL URL (``schema``: ``store/postgres.py``), and the
dialect's (passed on unchecked)."""


def check_database_url(url: str) -> None:
    """Raise ``ValueError`` naming what is wrong with a database URL: its scheme, or a
    query option neither Tocsin nor the driver takes (asyncpg would raise a
    ``TypeError`` at the first connection, SQLite would ignore it)."""
    from urllib.parse import parse_qsl

    scheme = url.partition("://")[0].lower()
    query = dict(parse_qsl(url.partition("?")[2], keep_blank_values=True))
    if scheme in ("sqlite", "sqlite+aiosqlite"):
        check_options(query, SQLITE_OPTIONS, (), "a SQLite URL takes only "
                      "synchronous=off|normal|full|extra")
        return
    if scheme in ("postgresql", "postgres", "postgresql+asyncpg"):
        import asyncpg  # type: ignore[import-untyped]

        check_options(query, POSTGRES_OPTIONS, parameters(asyncpg.connect) - ASYNCPG_NOT_OPTIONS,
                      "Tocsin's: schema; others must be asyncpg.connect() arguments, e.g. ssl")
        return
    raise ValueError(f"unknown database URL scheme {scheme!r} (use "
                     "sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db)")


def check_broker_url(url: str) -> None:
    """Raise ``ValueError`` naming what is wrong with a broker URL (``memory://`` takes
    a channel name and no options; Redis URLs: :func:`tocsin.redis_url.check_url`)."""
    scheme = url.partition("://")[0].lower()
    if scheme == "memory":
        if "?" in url:
            raise ValueError("memory:// takes no options")
        return
    check_redis_url(url)


def _duration(value: Any) -> Any:
    return parse_duration(value) if isinstance(value, str) else value


def _comma_list(value: Any) -> Any:
    """``"a, b"`` or ``["a,b", "c"]`` -> ``["a", "b", "c"]`` (no empty or padded items)."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list | tuple):
        return [part.strip() for item in value for part in str(item).split(",") if part.strip()]
    return value


Duration = Annotated[float, BeforeValidator(_duration)]
"""Seconds; a string is read by :func:`parse_duration` (``15s``, ``500ms``, ``7d``)."""
CommaList = Annotated[list[str], NoDecode, BeforeValidator(_comma_list)]
"""A list given as ``"a,b"`` (not JSON); items never contain commas, so it round-trips."""

_MAPPING: ContextVar[Mapping[str, str] | None] = ContextVar("tocsin_settings_env", default=None)


class _MappingEnvSource(EnvSettingsSource):
    """The ordinary environment source, reading a given mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._mapping = env
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._mapping, self.case_sensitive, self.env_ignore_empty,
                              self.env_parse_none_str)


class CoreSettings(BaseSettings):
    """Everything a Tocsin node runs with but its channels' settings (their mixins:
    ``tocsin.config.Settings`` is composed of this and them). Attribute names are the
    code's; each field's environment variable is ``TOCSIN_<NAME>`` or its
    ``validation_alias``. Modules below the channels take this class."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_ignore_empty=True,  # TOCSIN_API_KEYS= means "not set", not "invalid"
        populate_by_name=True,  # Settings(heartbeat_s=...) as well as TOCSIN_HEARTBEAT
        extra="forbid",
    )

    host: str = Field(DEFAULT_HOST, min_length=1, description="Interface to bind.")
    port: int = Field(DEFAULT_PORT, ge=0, le=65535, description="Port to bind (0: any free).")
    database_url: str = Field(
        default_factory=default_database_url, min_length=1,
        description="sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db.",
    )
    broker_url: str = Field(DEFAULT_BROKER_URL, min_length=1,
                            description="memory:// (one process) or redis://host:6379/0.")
    api_keys: CommaList = Field(
        default_factory=list,
        description="Publisher API keys (comma-separated; the flag is repeatable). "
                    "Several keys are for rotation: all are the same publisher.",
    )
    jwt_secret: str = Field("", description="Secret that signs subscriber tokens (HS256).")
    heartbeat_s: Duration = Field(
        DEFAULT_HEARTBEAT_S, ge=0, validation_alias="TOCSIN_HEARTBEAT",
        description="Ping interval on idle streams (e.g. 15s, 500ms).",
    )
    retry_ms: int = Field(DEFAULT_RETRY_MS, ge=0,
                          description="SSE retry: (milliseconds) sent to clients.")
    retention_s: Duration = Field(
        DEFAULT_RETENTION_S, ge=0, validation_alias="TOCSIN_RETENTION",
        description="How long events stay replayable (e.g. 7d).",
    )
    degraded_poll_s: Duration = Field(
        DEFAULT_DEGRADED_POLL_S, gt=0, validation_alias="TOCSIN_DEGRADED_POLL",
        description="How often to poll the store while the broker is down.",
    )
    dev: bool = Field(False, description="Development mode: generate and print a key "
                                         "and secret when none is given.")
    workers: int = Field(DEFAULT_WORKERS, ge=1,
                         description="Worker processes sharing the port (needs redis://).")
    demo: bool = Field(False, description="Also serve the demo page at /.")
    console: bool = Field(False, description="Serve the operators' console at /console "
                                             "(signed in with a publisher API key).")
    cors_origins: CommaList = Field(
        default_factory=list,
        description="Browser origins allowed to call the API (comma-separated; the flag "
                    "is repeatable).",
    )
    log_level: str = Field(DEFAULT_LOG_LEVEL,
                           description="Log level: " + ", ".join(LOG_LEVELS) + ".")
    rate_topic_posts: str = Field(
        DEFAULT_RATE_TOPIC_POSTS,
        description="Topic events a subscriber may post: N/s:burst per user, or off.",
    )
    rate_reads: str = Field(
        DEFAULT_RATE_READS,
        description="Other API requests and stream connects of a subscriber: N/s:burst "
                    "per user, or off.",
    )
    rate_publish: str = Field(
        DEFAULT_RATE_PUBLISH,
        description="Notifications per deployment, all API keys together (a publish "
                    "costs one per recipient, an "
                    "update/retract by key one per copy, an escalation its potential "
                    "fan-out, a topic event one): N/s:burst, or off.",
    )
    max_user_streams: int = Field(
        DEFAULT_MAX_USER_STREAMS, ge=1,
        description="Open streams one user may hold on one server process (inbox and "
                    "topics together); the next is refused with 429.",
    )
    max_header_bytes: int = Field(
        DEFAULT_MAX_HEADER_BYTES, ge=1024,
        description="Largest request head (request line and headers) in bytes; larger "
                    "gets 431.",
    )
    header_timeout_s: Duration = Field(
        DEFAULT_HEADER_TIMEOUT_S, gt=0, validation_alias="TOCSIN_HEADER_TIMEOUT",
        description="Time a connection has to send a complete request head (also closes "
                    "connections that send nothing).",
    )
    ws_write_timeout_s: Duration = Field(
        DEFAULT_WS_WRITE_TIMEOUT_S, gt=0, validation_alias="TOCSIN_WS_WRITE_TIMEOUT",
        description="A WebSocket whose client takes none of the data waiting for it for "
                    "this long is dropped.",
    )
    metrics_key: str = Field(
        DEFAULT_METRICS_KEY,
        description="When set, /metrics needs 'Authorization: Bearer <this key>' "
                    f"(at least {MIN_KEY_CHARS} characters); unset, /metrics is open: "
                    "keep it off the public proxy.",
    )
    timer_poll_s: Duration = Field(
        DEFAULT_TIMER_POLL_S, gt=0, validation_alias="TOCSIN_TIMER_POLL",
        description="How often each node looks for due timers (escalation steps).",
    )
    group_window_s: Duration = Field(
        3600.0, gt=0, validation_alias="TOCSIN_GROUP_WINDOW",
        description="How long after its newest publish a group (groupKey) stays open "
                    "to further publishes (docs/grouping.md).",
    )
    presence_interval_s: Duration = Field(
        DEFAULT_PRESENCE_INTERVAL_S, gt=0, validation_alias="TOCSIN_PRESENCE_INTERVAL",
        description="Presence heartbeat of each node (one broker message per node); a "
                    "dead node's presence expires within 4 intervals, a leave waits "
                    "min(5s, interval).",
    )
    db_pool_size: int = Field(
        DEFAULT_DB_POOL_SIZE, ge=1,
        description="PostgreSQL connections each server process keeps open; with "
                    "--db-max-overflow, the most it opens is their sum (per worker).",
    )
    db_max_overflow: int = Field(
        DEFAULT_DB_MAX_OVERFLOW, ge=0,
        description="PostgreSQL connections a server process may open beyond "
                    "--db-pool-size under load (closed again when idle).",
    )
    no_reuseport: bool = Field(
        False, description="Workers accept from one inherited socket instead of each "
                           "binding the port with SO_REUSEPORT.",
    )
    test_clock_file: str = Field(
        "", description="Testing only: the timers' clock reads ms since the epoch from "
                        "this file (the system clock while it is missing or empty).",
    )

    @field_validator("api_keys")
    @classmethod
    def _long_keys(cls, value: list[str]) -> list[str]:
        for key in value:
            if len(key) < MIN_KEY_CHARS:
                raise ValueError(f"an API key must be at least {MIN_KEY_CHARS} characters "
                                 f"(one has {len(key)}); e.g. python -c 'import secrets; "
                                 "print(secrets.token_urlsafe(24))'")
        return value

    @field_validator("broker_url")
    @classmethod
    def _known_broker_options(cls, value: str) -> str:
        check_broker_url(value)
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database_options(cls, value: str) -> str:
        check_database_url(value)
        return value

    @field_validator("jwt_secret", "metrics_key")
    @classmethod
    def _long_secret(cls, value: str, info: ValidationInfo) -> str:
        least = MIN_SECRET_CHARS if info.field_name == "jwt_secret" else MIN_KEY_CHARS
        if value and len(value) < least:
            raise ValueError(f"must be at least {least} characters (it has {len(value)}); "
                             "e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'")
        return value

    @field_validator("rate_topic_posts", "rate_reads", "rate_publish", mode="before")
    @classmethod
    def _valid_rate(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value.strip() if parse_rate(value) is not None else OFF
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _known_level(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value.strip().lower() not in LOG_LEVELS:
                raise ValueError(f"not a log level: {value!r} (use one of "
                                 + ", ".join(LOG_LEVELS) + ")")
            return value.strip().lower()
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Given values, then the environment (or :meth:`from_env`'s mapping); no files."""
        env = _MAPPING.get()
        if env is not None:
            env_settings = _MappingEnvSource(settings_cls, env)
        return init_settings, env_settings

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Self:
        """Settings from ``env`` (default ``os.environ``) alone, as the class reads it."""
        if env is None:
            return cls()
        with _reading(env):
            return cls()

    def to_env(self) -> dict[str, str]:
        """``TOCSIN_*`` variables that give back these settings exactly (for worker
        processes): ``Settings.from_env(s.to_env()) == s``."""
        out: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, bool):
                text = "1" if value else "0"
            elif isinstance(value, SecretStr) or value is None:  # None: unset, "" reads as unset
                text = value.get_secret_value() if value is not None else ""
            elif isinstance(value, list):
                text = ",".join(value)
            elif name.endswith("_s"):
                text = format_duration(float(value))
            else:
                text = str(value)
            out[env_name_in(type(self), name)] = text
        return out


@contextmanager
def _reading(env: Mapping[str, str]) -> Iterator[None]:
    token = _MAPPING.set(env)
    try:
        yield
    finally:
        _MAPPING.reset(token)


def _human_duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def env_name_in(cls: type[BaseSettings], field: str) -> str:
    """The environment variable of a field of ``cls``, e.g. ``TOCSIN_HEARTBEAT``."""
    alias = cls.model_fields[field].validation_alias
    return alias if isinstance(alias, str) else ENV_PREFIX + field.upper()
