"""The push channel's settings (a mixin of ``tocsin.config.Settings``) and flags."""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, Field, field_validator

DEFAULT_VAPID_SUBJECT = "mailto:admin@localhost"


class PushSettings(BaseModel):
    vapid_private_key: str = Field(
        "", description="Web Push: the server's VAPID private key (base64url of the raw "
                        "32-byte P-256 key, or PEM); unset, one is generated once and kept "
                        "in the database (tocsin vapid prints its public key).",
    )
    vapid_subject: str = Field(
        DEFAULT_VAPID_SUBJECT,
        description="Web Push: the contact push services see in every message (the "
                    "VAPID JWT's sub): a mailto: or https: URI.",
    )
    push_allow_insecure: bool = Field(
        False, description="Testing only: also accept push endpoints on http:// (and "
                           "https://) loopback addresses (a local push service).",
    )

    @field_validator("vapid_private_key")
    @classmethod
    def _vapid_key(cls, value: str) -> str:
        if value:
            from tocsin.channels.push.vapid import load_private_key

            load_private_key(value)  # ValueError says what is wrong
        return value

    @field_validator("vapid_subject")
    @classmethod
    def _vapid_subject(cls, value: str) -> str:
        value = value.strip()
        if not (value.startswith("mailto:") and "@" in value) \
                and not value.startswith("https://"):
            raise ValueError("must be a mailto: address or an https:// URL (push services "
                             "contact the operator there)")
        return value


FLAGS: list[tuple[str, str, Any]] = [
    ("vapid_private_key", "--vapid-private-key", str),
    ("vapid_subject", "--vapid-subject", str),
    ("push_allow_insecure", "--push-allow-insecure", bool),
]
"""The channel's flags of ``serve`` and ``demo`` (Settings field, flag, what it takes)."""
HELP_PANEL = "Web Push"
"""Its flags get a panel of their own in ``--help``."""
SECRET_FIELDS = frozenset({"vapid_private_key"})


class PushNodeSettings(Protocol):
    """What the channel reads of the node's settings: its own and the JWT secret (its
    read tokens)."""

    @property
    def jwt_secret(self) -> str: ...

    @property
    def vapid_private_key(self) -> str: ...

    @property
    def vapid_subject(self) -> str: ...

    @property
    def push_allow_insecure(self) -> bool: ...
