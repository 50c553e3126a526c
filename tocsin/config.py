"""The settings: one typed object, the only reader of the ``TOCSIN_*`` environment.

:class:`Settings` is a pydantic-settings class composed of the core settings
(``tocsin/settings.py``) and each registered channel's settings mixin
(``tocsin/channels/registry.py``): ``Settings(**values)`` takes the given values (the
CLI passes the flags that were given) and fills every other field from its
``TOCSIN_*`` variable, else from its named default. Each field's ``description`` is
its help text; the CLI builds its flags and help from the fields (:func:`env_name`,
:func:`default_text`), so flags, variables and help cannot drift.

This module sits above the channels (it knows them all); anything below them takes
:class:`tocsin.settings.CoreSettings`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from pydantic import ValidationError
from pydantic.fields import FieldInfo

from tocsin.channels.registry import CHANNELS
from tocsin.settings import (
    DEFAULT_DATABASE_TEXT,
    DEFAULT_HOST,
    DEFAULT_PORT,
    CoreSettings,
    _human_duration,
    default_database_url,
    demo_database_url,
    env_name_in,
    redact_url,
)

__all__ = [
    "DEFAULT_HOST", "DEFAULT_PORT", "SECRET_FIELDS", "Settings", "default_database_url",
    "default_text", "demo_database_url", "describe_error", "env_name", "redact_url",
]

if TYPE_CHECKING:
    from tocsin.channels.email.settings import EmailSettings
    from tocsin.channels.push.settings import PushSettings

    class Settings(CoreSettings, PushSettings, EmailSettings):
        """What the type checker sees: the core and today's channels' fields."""
else:
    Settings = type("Settings", (CoreSettings, *(c.settings for c in CHANNELS)), {
        "__doc__": "Everything a Tocsin node runs with: the core settings and each "
                   "registered channel's.",
        "__module__": __name__,
    })


def env_name(field: str) -> str:
    """The environment variable of a :class:`Settings` field, e.g. ``TOCSIN_HEARTBEAT``."""
    return env_name_in(Settings, field)


def default_text(field: str) -> str:
    """A field's default as a user would write it (``15s``, ``7d``, ``off``)."""
    info: FieldInfo = Settings.model_fields[field]
    if field == "database_url":
        return DEFAULT_DATABASE_TEXT
    if info.default_factory is not None:
        return "none"
    value = info.default
    if isinstance(value, bool):
        return "on" if value else "off"
    if field.endswith("_s"):
        return _human_duration(float(value))
    return str(value) if value not in ("", None) else "none"


SECRET_FIELDS = frozenset({"api_keys", "jwt_secret", "metrics_key"}).union(
    *(c.secret_fields for c in CHANNELS))
"""Settings whose values are never printed back in an error message."""
URL_FIELDS = frozenset({"database_url", "broker_url"})
"""Settings printed back only without their password."""


def describe_error(exc: ValidationError, flags: Mapping[str, str] | None = None) -> str:
    """One line per invalid setting, naming its variable (and its flag, from ``flags``:
    field name -> flag)."""
    by_key = {env_name(f): f for f in Settings.model_fields} | {f: f for f in Settings.model_fields}
    lines = []
    for err in exc.errors():
        key = str(err["loc"][0]) if err["loc"] else ""
        field = by_key.get(key) or by_key.get(key.upper())
        if field is None:
            lines.append(f"invalid setting {key}: {err['msg']}")
            continue
        where = env_name(field)
        if flags and field in flags:
            where += f" / {flags[field]}"
        msg = str(err["msg"]).removeprefix("Value error, ")
        # Never echo a rejected secret to the terminal (or a log collecting it), nor a
        # URL's password.
        value = err.get("input")
        if field in URL_FIELDS and isinstance(value, str):
            value = redact_url(value)
        got = "" if field in SECRET_FIELDS else f" (got {value!r})"
        lines.append(f"invalid {where}: {msg}{got}")
    return "\n".join(lines)
