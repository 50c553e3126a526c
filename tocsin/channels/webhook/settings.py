"""The webhook channel's settings (a mixin of ``tocsin.config.Settings``) and flags."""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, Field

from tocsin.settings import Duration

DEFAULT_GIVE_UP_S = 24 * 3600.0


class WebhookSettings(BaseModel):
    webhook_allow_private: bool = Field(
        False, description="Let webhooks reach loopback, private and link-local addresses "
                           "(and plain http://): for tests, the demo and intranet receivers.",
    )
    webhook_give_up_s: Duration = Field(
        DEFAULT_GIVE_UP_S, gt=0, validation_alias="TOCSIN_WEBHOOK_GIVE_UP",
        description="How long a chat/webhook channel message is retried before it is "
                    "given up (counted in tocsin_webhook_sent_total{result=\"gave_up\"}).",
    )


FLAGS: list[tuple[str, str, Any]] = [
    ("webhook_allow_private", "--webhook-allow-private", bool),
    ("webhook_give_up_s", "--webhook-give-up", str),
]
"""The channel's flags of ``serve`` and ``demo`` (Settings field, flag, what it takes)."""
HELP_PANEL = "Webhooks"
SECRET_FIELDS: frozenset[str] = frozenset()


class WebhookNodeSettings(Protocol):
    """What the channel reads of the node's settings."""

    @property
    def webhook_allow_private(self) -> bool: ...

    @property
    def webhook_give_up_s(self) -> float: ...
