"""Event webhooks' settings (a mixin of ``tocsin.config.Settings``) and flags.

``webhook_allow_private`` (``--webhook-allow-private``) is the webhook channel's
setting (``tocsin/channels/webhook/settings.py``), read here too: one switch for every
webhook a node sends."""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, Field

from tocsin.settings import Duration

DEFAULT_GIVE_UP_S = 24 * 3600.0
DEFAULT_PAUSE_AFTER = 20


class EventWebhookSettings(BaseModel):
    event_webhook_give_up_s: Duration = Field(
        DEFAULT_GIVE_UP_S, gt=0, validation_alias="TOCSIN_EVENT_WEBHOOK_GIVE_UP",
        description="How long an event webhook delivery is retried before it is given "
                    "up and listed in the subscription's failures.",
    )
    event_webhook_pause_after: int = Field(
        DEFAULT_PAUSE_AFTER, ge=1, le=10_000,
        description="Consecutive failed attempts after which an event webhook subscription "
                    "is paused (a PUT resumes it).",
    )


FLAGS: list[tuple[str, str, Any]] = [
    ("event_webhook_give_up_s", "--event-webhook-give-up", str),
    ("event_webhook_pause_after", "--event-webhook-pause-after", int),
]
"""The flags of ``serve`` and ``demo`` (Settings field, flag, what it takes)."""
HELP_PANEL = "Webhooks"
"""Their panel in ``--help`` (the long flags would squeeze the main one)."""


class EventWebhookNodeSettings(Protocol):
    """What the feature reads of the node's settings."""

    @property
    def webhook_allow_private(self) -> bool: ...

    @property
    def event_webhook_give_up_s(self) -> float: ...

    @property
    def event_webhook_pause_after(self) -> int: ...
