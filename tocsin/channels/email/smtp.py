"""Where emails go: the SMTP settings (``--smtp-url`` and friends) read once, and
one send with a hard deadline."""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import aiosmtplib

from tocsin.channels.email.links import public_base
from tocsin.channels.email.settings import EmailNodeSettings

SMTP_TIMEOUT_S = 15.0
"""Per SMTP step (connect, each command): aiosmtplib's ``timeout``."""
SEND_DEADLINE_S = 25.0
"""A whole send, queueing for a connection slot included: below the scheduler's
30 s lease, so a slow server never lets a second node claim (and send) it again."""
MAX_CONCURRENT_SENDS = 8
"""SMTP connections one node opens at once (the scheduler runs up to 50 timers)."""


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    implicit_tls: bool
    starttls: bool
    username: str | None
    password: str | None
    sender: str
    """The From header (``addr`` or ``Name <addr>``)."""

    @classmethod
    def from_settings(cls, settings: EmailNodeSettings) -> SmtpConfig | None:
        """``None`` when no ``--smtp-url`` is set: the email channel is off."""
        if not settings.smtp_url:
            return None
        u = urlsplit(settings.smtp_url)
        implicit = u.scheme == "smtps"
        user = settings.smtp_user or (unquote(u.username) if u.username else None)
        password = (settings.smtp_password.get_secret_value() if settings.smtp_password
                    else (unquote(u.password) if u.password is not None else None))
        sender = settings.smtp_from or f"tocsin@{_host_of(public_base(settings))}"
        return cls(host=u.hostname or "localhost", port=u.port or (465 if implicit else 25),
                   implicit_tls=implicit, starttls=settings.smtp_starttls and not implicit,
                   username=user or None, password=password, sender=sender)

    @property
    def encrypted(self) -> bool:
        return self.implicit_tls or self.starttls

    @property
    def local(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def describe(self) -> str:
        how = "TLS" if self.implicit_tls else "STARTTLS" if self.starttls else "plain"
        auth = " with a login" if self.username else ""
        return f"{self.host}:{self.port} ({how}{auth}), From {self.sender}"


def _host_of(url: str) -> str:
    host = urlsplit(url).hostname or "localhost"
    return host if "." in host or host == "localhost" else "localhost"


class SmtpSender:
    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_SENDS)

    async def send(self, msg: EmailMessage) -> None:
        """Deliver ``msg`` to the SMTP server; raises on any failure (refused
        recipient included) or after :data:`SEND_DEADLINE_S`."""
        c = self.config
        async with asyncio.timeout(SEND_DEADLINE_S), self._slots:
            await aiosmtplib.send(
                msg, hostname=c.host, port=c.port, username=c.username, password=c.password,
                use_tls=c.implicit_tls,
                # False without --smtp-starttls: plain (a local relay); never "STARTTLS if
                # offered", which fails on a relay's self-signed certificate at random
                start_tls=c.starttls,
                timeout=SMTP_TIMEOUT_S)
