"""The preferences' wire shape (camelCase), validated with pydantic: what
``PUT /api/preferences`` and ``PUT /api/preferences/defaults`` accept and what the
store keeps (as JSON) and the decision reads."""

from __future__ import annotations

import re
from datetime import time
from functools import lru_cache
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.alias_generators import to_camel

from tocsin.errors import TocsinError
from tocsin.text import name_error

Priority = Literal["low", "medium", "high", "urgent"]
STREAM_CHANNELS: tuple[str, ...] = ("inbox", "interrupt")
"""The channel names attention itself gives meaning to; the others are the registered
channels' names (``tocsin/channels/registry.py``), which the assembly point gives
attention and attention passes to every validation (pydantic's context, below): this
module names no channel of the registry."""
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
RANK: dict[str, int] = {"low": 0, "medium": 1, "high": 2, "urgent": 3}

def _known_channel(name: str, info: ValidationInfo) -> str:
    known: tuple[str, ...] = (info.context or {}).get("channels", STREAM_CHANNELS)
    if name not in known:
        raise ValueError("must be one of " + ", ".join(repr(c) for c in known))
    return name


Channel = Annotated[str, AfterValidator(_known_channel)]
"""A channel name: ``inbox``, ``interrupt`` or a registered channel's name (the
validation's context ``{"channels": names}``, see :func:`parse_preferences`)."""
DEFAULT_CHANNELS: list[str] = ["inbox", "interrupt", "push"]
"""A type with no channels set: in the inbox, may interrupt, and pushed to devices
whose tab is closed from ``pushMinPriority`` (default ``high``) up."""
DigestPeriod = Literal["off", "hourly", "daily"]
DIGEST_PERIOD_MS: dict[str, int] = {"hourly": 3_600_000, "daily": 86_400_000}
DEFAULT_EMAIL_AFTER_S = 900
MAX_EMAIL_AFTER_S = 30 * 86_400
MAX_TYPES = 100
"""Types a user may set through ``PUT /api/preferences`` (and the publisher's defaults)."""
MAX_STORED_TYPES = 1000
"""Types one user's preferences may hold in all. Unsubscribe links add their types
beyond :data:`MAX_TYPES` (the link must work however many a user set); each is a
type the server emailed that user, so only the publisher's vocabulary grows this."""
MAX_TYPE_CHARS = 100
_HHMM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")


class _M(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class TypePrefs(_M):
    channels: list[Channel] = Field(default_factory=lambda: list(DEFAULT_CHANNELS),
                                    max_length=8)
    min_priority: Priority = "low"
    push_min_priority: Priority = "high"
    """Web Push only from this priority up (and never below ``min_priority``)."""
    email_after: int = Field(default=DEFAULT_EMAIL_AFTER_S, ge=0, le=MAX_EMAIL_AFTER_S)
    """With the ``email`` channel: email it if still unread this many seconds after it
    arrived."""

    @field_validator("channels")
    @classmethod
    def _dedupe(cls, v: list[str]) -> list[str]:
        return list(dict.fromkeys(v))


class QuietHours(_M):
    timezone: str
    start: str
    end: str
    days: list[Day] = Field(default_factory=lambda: list(DAYS), max_length=7,
                            description="the days a window starts on; omit it for every "
                            "day (an empty list is refused)")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        zone_of(v)
        return v

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if not _HHMM.fullmatch(v):
            raise ValueError("must be a time of day \"HH:MM\" from 00:00 to 23:59")
        return v

    @field_validator("days")
    @classmethod
    def _days(cls, v: list[Day]) -> list[Day]:
        # [] once meant every day (the decision reads a missing list that way): refused
        # rather than guessed at; omitting ``days`` is every day
        if not v:
            raise ValueError("give at least one day, or omit days for every day")
        return [d for d in DAYS if d in v]


class Dnd(_M):
    until: int = Field(ge=0, le=2**53)
    since: int | None = Field(default=None, ge=0, le=2**53)


def _check_types(v: dict[str, TypePrefs], cap: int = MAX_STORED_TYPES
                 ) -> dict[str, TypePrefs]:
    if len(v) > cap:
        raise ValueError(f"at most {cap} types")
    for name in v:
        if not 0 < len(name) <= MAX_TYPE_CHARS:
            raise ValueError(f"type names are 1 to {MAX_TYPE_CHARS} characters")
        why = name_error(name)  # a type is a name (text.py), as at publish
        if why is not None:
            raise ValueError(f"type names {why}")
    return v


def _check_default_types(v: dict[str, TypePrefs]) -> dict[str, TypePrefs]:
    return _check_types(v, MAX_TYPES)


class Preferences(_M):
    types: dict[str, TypePrefs] = Field(default_factory=dict)
    quiet_hours: QuietHours | None = None
    dnd: Dnd | None = None
    urgent_bypasses_quiet: bool = True
    email_digest: DigestPeriod = "off"
    """``hourly``/``daily``: emails due in a period are sent as one digest at its end."""
    defaults: dict[str, Any] | None = None
    """Read-only on the wire (GET shows the publisher defaults); ignored on PUT."""

    _types = field_validator("types")(_check_types)

    def wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude={"defaults"})


class Defaults(_M):
    types: dict[str, TypePrefs] = Field(default_factory=dict)

    _types = field_validator("types")(_check_default_types)

    def wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True)


@lru_cache(maxsize=512)
def zone_of(name: str) -> ZoneInfo:
    try:
        if not name or name.startswith(("/", ".")) or ".." in name:
            raise ValueError
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown IANA time zone {name!r}") from None


def hhmm(v: str) -> time:
    return time(int(v[:2]), int(v[3:]))


def _parse(model: type[_M], raw: object, channels: tuple[str, ...]) -> Any:
    from tocsin.validation import error_from_validation

    if not isinstance(raw, dict):
        raise TocsinError("invalid_field", "The body must be a JSON object.", "types")
    try:
        return model.model_validate(raw, context={"channels": channels})
    except ValidationError as exc:
        err = error_from_validation(exc.errors(), located=False)
        # pydantic names a bad Literal "types.x.channels.0": the field is the list
        if err.field and err.field.rsplit(".", 1)[-1].isdigit():
            err.field = err.field.rsplit(".", 1)[0]
        raise err from None


def parse_preferences(raw: object, channels: tuple[str, ...]) -> Preferences:
    """``raw`` as :class:`Preferences`; ``channels``: every channel name a type may
    list (:data:`STREAM_CHANNELS` and the registered channels')."""
    prefs: Preferences = _parse(Preferences, raw, channels)
    return prefs


def parse_defaults(raw: object, channels: tuple[str, ...]) -> Defaults:
    d: Defaults = _parse(Defaults, raw, channels)
    return d


def with_channel_enum(schema: dict[str, Any], channels: tuple[str, ...]) -> dict[str, Any]:
    """A model's JSON schema (by alias) with ``channels``' items as the enum of the
    channel names this node knows (the API's OpenAPI document)."""
    type_prefs = schema.get("$defs", {}).get("TypePrefs", {})
    items = type_prefs.get("properties", {}).get("channels", {}).get("items")
    if items is not None:
        items["enum"] = list(channels)
    return schema
