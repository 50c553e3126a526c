"""The email channel (``tocsin.kernel.channel.Channel``): users' addresses, the
``email`` timer (one notification, sent now or queued for the user's digest), the
``email.digest`` timer, and unsubscribe.

Timers: the publish hook writes ``email:<notification id>`` (due ``emailAfter``
after arrival, or a quiet period's end) for every recipient whose preferences want
email and who has an address. When it fires, attention's ``still_wanted`` decides whether
the email is still due (unread, not expired, preferences now; a quiet period makes
it :class:`RetryLater`). With ``emailDigest`` ``hourly``/``daily`` the notification
is queued and the digest timer ``email-digest:<user>:<period end>`` is returned as
the follow-up, so it is written in the transaction that finishes this timer.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import email_validator
from email_validator import EmailNotValidError, validate_email
from prometheus_client import Counter

from tocsin.attention.model import DEFAULT_EMAIL_AFTER_S, zone_of
from tocsin.channels.email.compose import compose_digest, compose_one
from tocsin.channels.email.links import unsubscribe_url
from tocsin.channels.email.settings import EmailNodeSettings
from tocsin.channels.email.smtp import SmtpConfig, SmtpSender
from tocsin.channels.running import Running
from tocsin.errors import TocsinError
from tocsin.kernel.observe import Observation
from tocsin.scheduler import NewTimer, RetryLater, Timer
from tocsin.store.base import Json
from tocsin.store.hooks import in_marks
from tocsin.store.outbox import Happening
from tocsin.text import name_error

if TYPE_CHECKING:
    from email.message import EmailMessage

    from fastapi import APIRouter

    from tocsin.channels.email.store import SqlEmailStore
    from tocsin.kernel import Kernel
    from tocsin.kernel.channel import Attention

log = logging.getLogger("tocsin.email")

NAME = "email"
"""The channel's name in preferences, and the timer the publish writes:
``email:<notification id>`` (payload ``{"user"}``): email it if still unread."""
DIGEST_KIND = "email.digest"
MAX_ATTEMPTS = 8
"""Sends of one email (or digest) before it is given up (logged, counted)."""
RETRY_BASE_MS = 30_000
RETRY_MAX_MS = 15 * 60_000
"""A failed send is retried after 30 s, 1, 2, 4, 8, then 15 min: about 45 minutes
in all, so a relay restarting or briefly down loses nothing."""
DIGEST_CHECKED = 200
"""Queued notifications a digest re-checks (and lists up to ``DIGEST_LISTED``); more
are counted, not checked: bounded work per digest."""
MAX_ADDRESS_CHARS = 254
MAX_USER_CHARS = 200
HOUR_MS = 3_600_000

# email-validator refuses addresses on special-use domains (.local, .test, .localhost,
# home.arpa, .invalid, .onion) on every call, whatever its options; emptying this list
# is its documented switch. Tocsin checks syntax only and sends through the one relay
# it is given, which decides what it delivers; intranets (Active Directory's .local)
# and test set-ups use exactly these names (docs/email.md, "Addresses").
email_validator.SPECIAL_USE_DOMAIN_NAMES.clear()


def period_end(digest: str, now: int, zone: str | None) -> int:
    """When the digest period containing ``now`` ends (strictly after ``now``):
    ``hourly`` the next full hour (UTC), ``daily`` the next midnight in ``zone``
    (the user's quiet-hours zone; UTC without one)."""
    if digest == "hourly":
        return (now // HOUR_MS + 1) * HOUR_MS
    tz = UTC
    if zone:
        try:
            tz = zone_of(zone)  # type: ignore[assignment]
        except ValueError:
            tz = UTC
    day = datetime.fromtimestamp(now / 1000, tz).date() + timedelta(days=1)
    end = int(datetime.combine(day, time(0), tz).timestamp() * 1000)
    return end if end > now else now + HOUR_MS  # a zone skipping midnight: never the past


def digest_timer_id(user: str, end: int) -> str:
    """``email-digest:<user>:<end>``, or a hash of a user id too long for the 200-char
    timer id (the key keeps the real user)."""
    tid = f"email-digest:{user}:{end}"
    if len(tid) <= 200:
        return tid
    return f"email-digest:#{hashlib.sha256(user.encode()).hexdigest()}:{end}"


def check_address(raw: object) -> str | None:
    """The address to store (normalised), ``None`` to clear; 400 otherwise."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise TocsinError("invalid_field", "email must be a string or null.", "email")
    if len(raw) > MAX_ADDRESS_CHARS:
        raise TocsinError("too_long", f"email is longer than {MAX_ADDRESS_CHARS} characters.",
                          "email")
    if any(c.isspace() for c in raw) or raw.count("@") != 1:
        raise TocsinError("invalid_field", "email must be one address: one @, no spaces.",
                          "email")
    try:
        # Syntax only (no DNS at request time); an ASCII local part, so every relay
        # can take it (no SMTPUTF8 needed); the domain must have a dot.
        info = validate_email(raw, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise TocsinError("invalid_field", f"email is not a valid address: {exc}",
                          "email") from None
    addr = info.ascii_email or info.normalized
    if len(addr) > MAX_ADDRESS_CHARS:
        raise TocsinError("too_long", f"email is longer than {MAX_ADDRESS_CHARS} characters.",
                          "email")
    return addr


def check_user(user: str) -> str:
    # the name rule (text.py): PostgreSQL refuses NUL in text (a 500, not a 400)
    if not user or len(user) > MAX_USER_CHARS or name_error(user) is not None:
        raise TocsinError("invalid_field", f"user must be 1 to {MAX_USER_CHARS} characters, "
                          "none of them control characters.", "user")
    return user


_WORDING = {"preferences": "unsubscribed"}
"""Email is only turned off for a type through the preferences (the unsubscribe link
among them): the trail says ``email suppressed: unsubscribed``."""


def _reply(exc: Exception) -> str:
    """The SMTP server's reply where there is one (``smtplib``/``aiosmtplib`` errors
    carry ``code`` and ``message``), else the error."""
    code, message = getattr(exc, "smtp_code", None) or getattr(exc, "code", None), \
        getattr(exc, "smtp_error", None) or getattr(exc, "message", None)
    if isinstance(message, bytes):
        message = message.decode(errors="replace")
    if isinstance(code, int):
        return f"{code} {message or ''}".strip()[:500]
    return repr(exc)[:500]


class EmailChannel(Running):
    """Email to people whose tab is closed (an SMTP relay; off without one)."""

    name = NAME
    intrusiveness = 1
    """Read when the person chooses: the gentlest channel (``low`` goes by email only)."""

    def __init__(self, settings: EmailNodeSettings) -> None:
        self.settings = settings
        super().__init__(Counter(
            "tocsin_email_sent_total", "Email timers by outcome (sent; error: a failed send, "
            "retried; gave_up: failed 8 times; unwanted: read, expired or no longer wanted "
            "when due; no_address; off: no --smtp-url)", ["result"], registry=None))
        self._store: SqlEmailStore | None = None
        self.smtp: SmtpConfig | None = None
        self.sender: SmtpSender | None = None

    # -- the rule (pure: inside the publish's transaction) -----------------------------
    def due(self, type_prefs: Mapping[str, Any], priority: str, now: int,
            start: int) -> int | None:
        """``emailAfter`` seconds after arrival (the handler checks it is still
        unread), not before the quiet period's end."""
        return max(now + 1000 * int(type_prefs.get("emailAfter", DEFAULT_EMAIL_AFTER_S)),
                   start)

    def reachable_sql(self, n: int) -> str:
        """Users with an address."""
        return ("SELECT user_id FROM tocsin_users WHERE email IS NOT NULL AND user_id IN ("
                + in_marks(n) + ")")

    # -- lifecycle ---------------------------------------------------------------------
    def router(self) -> APIRouter:
        from tocsin.channels.email.routes import routes

        return routes(self)

    async def start(self, kernel: Kernel, attention: Attention) -> None:
        from tocsin.channels.email.store import SqlEmailStore

        self.attach(kernel, attention)
        if not kernel.has_database:
            return
        self._store = SqlEmailStore(kernel.db)
        settings = self.settings
        self.smtp = SmtpConfig.from_settings(settings)
        if self.smtp is None:
            log.info("email: no --smtp-url, the email channel is off (email timers finish "
                     "without sending)")
        else:
            self.sender = SmtpSender(self.smtp)
            log.info("email: sending through %s", self.smtp.describe())
            if not self.smtp.encrypted and not self.smtp.local:
                log.warning("email: %s is not on this machine and neither smtps:// nor "
                            "--smtp-starttls is set: mail and login go unencrypted",
                            self.smtp.host)
            if not settings.smtp_from:
                log.warning("email: no --smtp-from, sending as %s", self.smtp.sender)
        # the node's one durable scheduler: each email fires once across nodes
        kernel.timers.on(NAME, self._email)
        kernel.timers.on(DIGEST_KIND, self._digest)

    @property
    def store(self) -> SqlEmailStore:
        if self._store is None:
            raise TocsinError("not_found", "Users need a SQL store.")
        return self._store

    def _now(self) -> int:
        return self.kernel.clock()

    # -- users -------------------------------------------------------------------------
    async def get_user(self, user: str) -> Json:
        known, email = await self.store.get_user(check_user(user))
        if not known:
            raise TocsinError("not_found", f"No user {user!r} (PUT /api/users/{{user}} "
                              "stores one).")
        return {"user": user, "email": email}

    async def put_user(self, user: str, raw: object) -> Json:
        check_user(user)
        if not isinstance(raw, dict):
            raise TocsinError("invalid_field", "The body must be a JSON object "
                              '{"email": "..." or null}.', "email")
        extra = sorted(set(raw) - {"email"})
        if extra:
            raise TocsinError("invalid_field", f"Unknown field {extra[0]!r}.", extra[0])
        if "email" not in raw:
            raise TocsinError("missing_field", "email is required (null clears it).", "email")
        email = check_address(raw["email"])
        await self.store.put_user(user, email, self._now())
        return {"user": user, "email": email}

    # -- the user record's ``email`` (tocsin.kernel.channel.UserFields) ----------------
    user_fields = ("email",)

    def check_user_fields(self, fields: Mapping[str, Any]) -> str | None:
        return check_address(fields["email"])

    async def write_user(self, user: str, checked: str | None) -> Json:
        await self.store.put_user(user, checked, self._now())
        return {"email": checked}

    async def read_user(self, user: str) -> Json | None:
        known, email = await self.store.get_user(user)
        return {"email": email} if known else None

    # -- unsubscribe -------------------------------------------------------------------
    async def unsubscribe(self, user: str, types: list[str]) -> list[str]:
        """Turn the email channel off for ``types`` in ``user``'s preferences (the
        link's types; attention's ``turn_off`` says what changes)."""
        # the outbox's event (event webhooks) is written with the change; a link used
        # when email was off already changes nothing but is still the user's
        # unsubscribe: its event gets a transaction of its own (before the reply)
        event = Happening("email.unsubscribed", user, None, user, {"types": list(types)})
        if not await self.attention.turn_off(user, NAME, types, also=[event]):
            db = self.kernel.db if self.kernel.has_database else None
            if db is not None and db.outbox.wants(event.kind):
                async with db.write() as conn:
                    await db.happened(conn, [event])
        self.kernel.observations.report([Observation(
            "email.unsubscribed", self.kernel.clock(), user, None, user, {"types": types})])
        return types

    # -- timers ------------------------------------------------------------------------
    async def _email(self, timer: Timer) -> list[NewTimer]:
        user, nid = str(timer.payload["user"]), timer.key
        if self.sender is None or self.smtp is None:
            self.outcome("off", user, nid, "suppressed", reason="no_smtp")
            return []
        note = await self.attention.still_wanted(user, nid, NAME)  # RetryLater: quiet
        if note is None:
            await self.suppressed("unwanted", user, nid, _WORDING)
            return []
        _, address = await self.store.get_user(user)
        if address is None:
            self.outcome("no_address", user, nid, "suppressed", reason="no_address")
            return []
        prefs = await self.attention.preferences(user) or {}
        digest = prefs.get("emailDigest") or "off"
        now = self._now()
        if digest in ("hourly", "daily"):
            zone = (prefs.get("quietHours") or {}).get("timezone")
            end = period_end(str(digest), now, zone)
            await self.store.enqueue(user, nid, end, now)
            self.outcome(None, user, nid, "scheduled", **{"for": end, "digest": digest})
            return [NewTimer(digest_timer_id(user, end), DIGEST_KIND, user, end,
                             {"periodEnd": end})]
        msg = compose_one(note, user, address, self.smtp.sender,
                          unsubscribe_url(self.settings, user, [str(note["type"])]), now)
        await self._send(timer, msg, f"notification {nid}", user, [nid])
        return []

    async def _digest(self, timer: Timer) -> list[NewTimer]:
        user, end = timer.key, int(timer.payload["periodEnd"])
        rows, more = await self.store.queued(user, end, DIGEST_CHECKED)
        after = (rows[-1][1], rows[-1][0]) if more else None
        ids = [nid for nid, _ in rows]
        if self.sender is None or self.smtp is None:
            await self.store.dequeue(user, end, ids, after)
            self.outcome("off", user, None, "suppressed", reason="no_smtp", digest=True)
            return []
        _, address = await self.store.get_user(user)
        notes: list[Json] = []
        if address is not None:
            for nid in ids:
                note = await self.attention.still_wanted(user, nid, NAME)  # quiet: later
                if note is not None:
                    notes.append(note)
        if address is not None and (notes or more):
            msg = compose_digest(notes, more, user, address, self.smtp.sender,
                                 self._digest_unsubscribe(user, notes), end, self._now())
            # a failed send raises RetryLater: the queue rows stay for the next attempt
            await self._send(timer, msg, f"digest {end} ({len(notes) + more})", user,
                             [str(n["id"]) for n in notes])
        await self.store.dequeue(user, end, ids, after)
        return []

    def _digest_unsubscribe(self, user: str, notes: list[Json]) -> str | None:
        types = list(dict.fromkeys(str(n["type"]) for n in notes))
        return unsubscribe_url(self.settings, user, types) if types else None

    async def _send(self, timer: Timer, msg: EmailMessage, what: str, user: str = "",
                    nids: Sequence[str] = ()) -> bool:
        """Send, counting the result; raise :class:`RetryLater` to try again, or give up
        after :data:`MAX_ATTEMPTS` (``True``: sent or given up; the timer is done)."""
        assert self.sender is not None
        try:
            await self.sender.send(msg)
        except Exception as exc:
            self._outcomes("error", user, nids, "failed", reply=_reply(exc),
                           attempt=timer.attempts)
            if timer.attempts >= MAX_ATTEMPTS:
                self._outcomes("gave_up", user, nids, "given_up", attempts=timer.attempts)
                log.error("email: giving up on %s for user %r after %d attempts: %r",
                          what, timer.key if timer.kind == DIGEST_KIND else
                          timer.payload.get("user"), timer.attempts, exc)
                return True
            delay = min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** max(0, timer.attempts - 1))
            log.warning("email: sending %s failed (attempt %d of %d), retrying in %d s: %r",
                        what, timer.attempts, MAX_ATTEMPTS, delay // 1000, exc)
            raise RetryLater(delay, f"SMTP: {exc!r}") from exc
        self._outcomes("sent", user, nids, "sent")
        return True

    def _outcomes(self, result: str, user: str, nids: Sequence[str], step: str,
                  **detail: Any) -> None:
        """One counted outcome for the message, one step per notification it carried."""
        self.outcome(result, user, nids[0] if nids else None, step, **detail)
        for nid in nids[1:]:
            self.outcome(None, user, nid, step, **detail)
