"""One config object with named defaults. CLI flags mirror ``TOCSIN_*`` variables."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_BROKER_URL = "memory://"
DEFAULT_HEARTBEAT_S = 15.0
DEFAULT_RETRY_MS = 3000
DEFAULT_RETENTION_S = 7 * 24 * 3600
DEFAULT_DEGRADED_POLL_S = 1.0


def default_database_url() -> str:
    """``./tocsin.db`` if it exists (or the user data dir is unusable), else the data dir."""
    local = Path("tocsin.db")
    if local.exists():
        return f"sqlite+aiosqlite:///{local.resolve()}"
    try:
        from platformdirs import user_data_dir

        data = Path(user_data_dir("tocsin", appauthor=False))
        data.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{data / 'tocsin.db'}"
    except OSError:
        return f"sqlite+aiosqlite:///{local.resolve()}"


def redact_url(url: str) -> str:
    """``scheme://user:secret@host/db`` -> ``scheme://host/db``: safe to print or serve."""
    scheme, sep, rest = url.partition("://")
    return scheme + sep + rest.rpartition("@")[2] if "@" in rest else url


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(text: str) -> float:
    """``"15"``, ``"15s"``, ``"500ms"``, ``"7d"`` -> seconds."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 15m, 7d)")
    return float(m.group(1)) * _UNIT_S[m.group(2)]


@dataclass(slots=True)
class Settings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    database_url: str = field(default_factory=default_database_url)
    broker_url: str = DEFAULT_BROKER_URL
    api_keys: list[str] = field(default_factory=list)
    jwt_secret: str = ""
    heartbeat_s: float = DEFAULT_HEARTBEAT_S
    retry_ms: int = DEFAULT_RETRY_MS
    retention_s: float = DEFAULT_RETENTION_S
    degraded_poll_s: float = DEFAULT_DEGRADED_POLL_S
    """How often a node polls stream heads while its broker is down."""
    dev: bool = False
    workers: int = 1
    demo: bool = False
    cors_origins: list[str] = field(default_factory=list)
    log_level: str = "info"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Settings from ``TOCSIN_*`` variables (used by worker processes)."""
        e = os.environ if env is None else env
        s = cls()
        if v := e.get("TOCSIN_HOST"):
            s.host = v
        if v := e.get("TOCSIN_PORT"):
            s.port = int(v)
        if v := e.get("TOCSIN_DATABASE_URL"):
            s.database_url = v
        if v := e.get("TOCSIN_BROKER_URL"):
            s.broker_url = v
        if v := e.get("TOCSIN_API_KEYS"):
            s.api_keys = [k.strip() for k in v.split(",") if k.strip()]
        if v := e.get("TOCSIN_JWT_SECRET"):
            s.jwt_secret = v
        if v := e.get("TOCSIN_HEARTBEAT"):
            s.heartbeat_s = parse_duration(v)
        if v := e.get("TOCSIN_RETRY_MS"):
            s.retry_ms = int(v)
        if v := e.get("TOCSIN_RETENTION"):
            s.retention_s = parse_duration(v)
        if v := e.get("TOCSIN_DEGRADED_POLL"):
            s.degraded_poll_s = parse_duration(v)
        if v := e.get("TOCSIN_CORS_ORIGINS"):
            s.cors_origins = [o.strip() for o in v.split(",") if o.strip()]
        s.dev = e.get("TOCSIN_DEV", "") in ("1", "true", "yes")
        s.demo = e.get("TOCSIN_DEMO", "") in ("1", "true", "yes")
        return s

    def to_env(self) -> dict[str, str]:
        """The inverse of :meth:`from_env`, for handing settings to worker processes."""
        return {
            "TOCSIN_HOST": self.host,
            "TOCSIN_PORT": str(self.port),
            "TOCSIN_DATABASE_URL": self.database_url,
            "TOCSIN_BROKER_URL": self.broker_url,
            "TOCSIN_API_KEYS": ",".join(self.api_keys),
            "TOCSIN_JWT_SECRET": self.jwt_secret,
            "TOCSIN_HEARTBEAT": f"{self.heartbeat_s}s",
            "TOCSIN_RETRY_MS": str(self.retry_ms),
            "TOCSIN_RETENTION": f"{self.retention_s}s",
            "TOCSIN_DEGRADED_POLL": f"{self.degraded_poll_s}s",
            "TOCSIN_CORS_ORIGINS": ",".join(self.cors_origins),
            "TOCSIN_DEV": "1" if self.dev else "",
            "TOCSIN_DEMO": "1" if self.demo else "",
        }
