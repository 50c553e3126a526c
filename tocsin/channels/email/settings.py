"""The email channel's settings (a mixin of ``tocsin.config.Settings``) and flags;
no ``--smtp-url``: email is off."""

from __future__ import annotations

import re
from typing import Any, Protocol

from pydantic import BaseModel, Field, SecretStr, field_validator

_ADDR = re.compile(r"[^@\s<>]+@[^@\s<>]+")
"""An envelope address as the From may give it (no DNS rules: a relay may be local)."""


class EmailSettings(BaseModel):
    smtp_url: str = Field(
        "", description="SMTP server for the email channel: smtp://host:port (plain, or "
                        "STARTTLS with --smtp-starttls) or smtps://host:port (implicit "
                        "TLS); user:password@ may be in it, percent-encoded. Unset: no "
                        "email is sent.",
    )
    smtp_user: str = Field("", description="SMTP user name (wins over one in the URL).")
    smtp_password: SecretStr | None = Field(
        None, description="SMTP password (wins over one in the URL).")
    smtp_starttls: bool = Field(
        False, description="Require STARTTLS on smtp:// (the send fails without it).")
    smtp_from: str = Field(
        "", description="The From of emails: addr@example.com or 'Name <addr@example.com>' "
                        "(default tocsin@<the public URL's host>).",
    )
    public_url: str = Field(
        "", description="Base URL the links in emails point to (the unsubscribe link), "
                        "e.g. https://notify.example.com (default: from --host/--port).",
    )

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: str) -> str:
        if value:
            from urllib.parse import urlsplit

            try:  # .port raises on a port that is not a number in range
                u = urlsplit(value.strip())
                port_ok = u.port is None or u.port > 0
            except ValueError:
                port_ok = False
            if u.scheme not in ("smtp", "smtps") or not u.hostname or not port_ok \
                    or u.path not in ("", "/") or u.query or u.fragment:
                raise ValueError("use smtp://host:port or smtps://host:port (user:password@ "
                                 "may precede the host, percent-encoded)")
            return value.strip()
        return value

    @field_validator("smtp_from")
    @classmethod
    def _smtp_from(cls, value: str) -> str:
        from email.utils import parseaddr

        if not value:
            return value
        addr = parseaddr(value)[1]
        if any(c in value for c in "\r\n\0") or not _ADDR.fullmatch(addr):
            raise ValueError("use addr@example.com or 'Name <addr@example.com>'")
        return value.strip()

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        if not value:
            return value
        from urllib.parse import urlsplit

        u = urlsplit(value.strip())
        if u.scheme not in ("http", "https") or not u.netloc or u.query or u.fragment \
                or any(c.isspace() for c in value.strip()):
            raise ValueError("use an absolute http(s) URL such as https://notify.example.com")
        return value.strip().rstrip("/")


FLAGS: list[tuple[str, str, Any]] = [
    ("smtp_url", "--smtp-url", str), ("smtp_user", "--smtp-user", str),
    ("smtp_password", "--smtp-password", str),
    ("smtp_starttls", "--smtp-starttls", bool),
    ("smtp_from", "--smtp-from", str), ("public_url", "--public-url", str),
]
"""The channel's flags of ``serve`` and ``demo`` (Settings field, flag, what it takes)."""
HELP_PANEL = None
"""Its flags stay in the main panel of ``--help``."""
SECRET_FIELDS = frozenset({"smtp_url", "smtp_password"})


class EmailNodeSettings(Protocol):
    """What the channel reads of the node's settings: its own, and where the node
    listens and the secret that signs its links."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def jwt_secret(self) -> str: ...

    @property
    def smtp_url(self) -> str: ...

    @property
    def smtp_user(self) -> str: ...

    @property
    def smtp_password(self) -> SecretStr | None: ...

    @property
    def smtp_starttls(self) -> bool: ...

    @property
    def smtp_from(self) -> str: ...

    @property
    def public_url(self) -> str: ...
