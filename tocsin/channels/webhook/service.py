"""The chat and webhook channel (``tocsin.kernel.channel.Channel``): a user's own
target (``reachable_sql``: users who have one) and publishers' named targets.

Timers: the publish hook writes ``webhook:<notification id>`` (payload ``{"user"}``)
for every recipient whose preferences want ``webhook`` and who has a target, due at
once or at their quiet period's end. When it fires, attention's ``still_wanted``
decides (a quiet period makes it :class:`RetryLater`); the body is rendered then
and frozen in a ``webhook.send`` timer, returned as the follow-up (written in the
transaction that finishes this one). ``webhook.send`` posts it: the same body and
``webhook-id`` on every attempt (receivers deduplicate), retried with backoff or
after the receiver's ``Retry-After`` until ``--webhook-give-up`` has passed. Both
are timers of the node's one durable scheduler, so a node killed between the
publish and the send delivers after its restart, and nothing of it runs on the
publish's or the streams' path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import httpx
from prometheus_client import Counter

from tocsin.channels.running import Running
from tocsin.channels.webhook.formats import FORMATS, render
from tocsin.channels.webhook.settings import WebhookNodeSettings
from tocsin.errors import TocsinError
from tocsin.kernel.observe import Observation
from tocsin.outbound import LocalService, Refused, Rules, check_url
from tocsin.outbound.signing import headers as signed_headers
from tocsin.scheduler import NewTimer, RetryLater, Timer
from tocsin.store.base import Json
from tocsin.store.hooks import in_marks
from tocsin.text import name_error

if TYPE_CHECKING:
    from fastapi import APIRouter

    from tocsin.channels.webhook.store import SqlWebhookStore, Target
    from tocsin.kernel import Kernel
    from tocsin.kernel.channel import Attention

log = logging.getLogger("tocsin.webhook")

NAME = "webhook"
"""The channel's name in preferences, and the timer the publish writes."""
SEND_KIND = "webhook.send"
RETRY_BASE_MS = 5_000
RETRY_MAX_MS = 15 * 60_000
MAX_RETRY_AFTER_MS = 3_600_000
"""A receiver's ``Retry-After`` is honoured up to an hour."""
MAX_NAME_CHARS = 100
MAX_TARGETS = 1000
"""Named targets a node keeps (users' own are one per user)."""
MAX_URL_CHARS = 2000
MAX_BODY_BYTES = 64 * 1024
"""A rendered body is at most this (a notification is far smaller)."""


def check_name(name: str, what: str = "name", cap: int = MAX_NAME_CHARS) -> str:
    if not name or len(name) > cap or name_error(name) is not None:
        raise TocsinError("invalid_field", f"{what} must be 1 to {cap} characters, none "
                          "of them control characters.", what)
    return name


def retry_after_ms(value: str | None, now_s: float) -> int | None:
    """A ``Retry-After`` header (seconds, or an HTTP date) in ms, capped; ``None``
    if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        ms = int(float(value) * 1000) if value.replace(".", "", 1).isdigit() else int(
            (parsedate_to_datetime(value).timestamp() - now_s) * 1000)
    except (TypeError, ValueError, OverflowError):
        return None
    return max(0, min(ms, MAX_RETRY_AFTER_MS))


class WebhookChannel(Running):
    """Chat rooms and webhooks (Slack, Discord, Teams, any JSON receiver)."""

    name = NAME
    intrusiveness = 3
    """A chat room pings a person (and often a team): the loudest channel, so ``low``
    priority prefers email or push when a recipient wants those too."""

    def __init__(self, settings: WebhookNodeSettings) -> None:
        self.settings = settings
        super().__init__(Counter(
            "tocsin_webhook_sent_total", "Webhook channel messages by outcome (sent; "
            "error: a failed attempt, retried; gave_up: still failing after "
            "--webhook-give-up, or refused by the receiver (4xx); unwanted: read, "
            "expired or no longer wanted when due; no_target; refused: address not "
            "allowed)", ["result"], registry=None))
        self._store: SqlWebhookStore | None = None
        self._local: tuple[LocalService, ...] = ()

    @property
    def rules(self) -> Rules:
        """Public addresses only; loopback, private, link-local with
        ``--webhook-allow-private``; and the local services :meth:`accept_local` named."""
        return Rules(allow_private=self.settings.webhook_allow_private, local=self._local)

    def accept_local(self, port: int, path: str) -> None:
        """Also accept targets on one service on this machine: a loopback address,
        ``port``, under ``path`` (the demo's own chat room; call before :meth:`start`),
        without allowing every local address."""
        self._local = (*self._local, LocalService(port, path))

    # -- the rule (pure: inside the publish's transaction) -----------------------------
    def due(self, type_prefs: Mapping[str, Any], priority: str, now: int,
            start: int) -> int | None:
        """At once, or at the quiet period's end."""
        return start

    def reachable_sql(self, n: int) -> str:
        """Users with a target of their own."""
        return ("SELECT user_id FROM tocsin_webhook_users WHERE user_id IN ("
                + in_marks(n) + ")")

    # -- lifecycle ---------------------------------------------------------------------
    def router(self) -> APIRouter:
        from tocsin.channels.webhook.routes import routes

        return routes(self)

    async def start(self, kernel: Kernel, attention: Attention) -> None:
        from tocsin.channels.webhook.store import SqlWebhookStore

        self.attach(kernel, attention)
        if not kernel.has_database:
            return
        self._store = SqlWebhookStore(kernel.db)
        self.open_client(self.rules)
        kernel.timers.on(NAME, self._decide)
        kernel.timers.on(SEND_KIND, self._send)

    @property
    def store(self) -> SqlWebhookStore:
        if self._store is None:
            raise TocsinError("not_found", "Webhook targets need a SQL store.")
        return self._store

    # -- targets -----------------------------------------------------------------------
    def check_target(self, raw: object) -> Target:
        from tocsin.channels.webhook.store import Target
        from tocsin.outbound.signing import new_secret, normalize_secret

        if not isinstance(raw, dict):
            raise TocsinError("invalid_field", "The body must be a JSON object "
                              '{"url", "format", "secret"?}.', "url")
        extra = sorted(set(raw) - {"url", "format", "secret"})
        if extra:
            raise TocsinError("invalid_field", f"Unknown field {extra[0]!r}.", extra[0])
        for field in ("url", "format"):
            if field not in raw:
                raise TocsinError("missing_field", f"'{field}' is required.", field)
        url, fmt, secret = raw["url"], raw["format"], raw.get("secret")
        if not isinstance(url, str) or not url or len(url) > MAX_URL_CHARS or any(
                c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
            raise TocsinError("invalid_field", f"'url' must be a URL of at most "
                              f"{MAX_URL_CHARS} characters, no spaces or control "
                              "characters.", "url")
        try:
            check_url(url, self.rules)
        except Refused as exc:
            raise TocsinError("invalid_field", f"'url' is refused: {exc}.", "url") from None
        if fmt not in FORMATS:
            raise TocsinError("invalid_field", "'format' must be one of "
                              + ", ".join(FORMATS) + ".", "format")
        if secret is True:  # generated here, shown once in the reply
            return Target(url, str(fmt), new_secret())
        if secret is not None:
            try:
                if not isinstance(secret, str):
                    raise ValueError("a secret is whsec_<base64>, or true to have one made")
                secret = normalize_secret(secret)
            except ValueError as exc:
                raise TocsinError("invalid_field", f"'secret': {exc}.", "secret") from None
        return Target(url, str(fmt), secret)

    @staticmethod
    def target_json(target: Target, shown: object = None) -> Json:
        """The target as the API shows it: never its secret (the publisher has it),
        except the one just made for a body that asked ``"secret": true``."""
        out: Json = {"url": target.url, "format": target.format,
                     "signed": target.secret is not None}
        if isinstance(shown, dict) and shown.get("secret") is True:
            out["secret"] = target.secret
        return out

    async def put_target(self, name: str, raw: object) -> Json:
        target = self.check_target(raw)
        if await self.store.count_others(check_name(name)) >= MAX_TARGETS:
            raise TocsinError("invalid_field", f"At most {MAX_TARGETS} webhook targets; "
                              "delete one first.", "name")
        await self.store.put(name, target, self.kernel.clock())
        return {"name": name, **self.target_json(target, shown=raw)}

    async def get_target(self, name: str) -> Json:
        target = await self.store.get(check_name(name))
        if target is None:
            raise TocsinError("not_found", f"No webhook target {name!r}.")
        return {"name": name, **self.target_json(target)}

    async def delete_target(self, name: str) -> Json:
        if not await self.store.delete(check_name(name)):
            raise TocsinError("not_found", f"No webhook target {name!r}.")
        return {"name": name, "deleted": True}

    # -- the user record's ``webhook`` (tocsin.kernel.channel.UserFields) ---------------
    user_fields = ("webhook",)

    def check_user_fields(self, fields: Mapping[str, Any]) -> tuple[Target | None, object]:
        """``{url, format, secret?}``, or ``null`` to clear (with the raw value, so a
        generated secret is shown once); errors name ``webhook.<field>``."""
        raw = fields["webhook"]
        if raw is None:
            return None, raw
        try:
            return self.check_target(raw), raw
        except TocsinError as err:
            err.field = f"webhook.{err.field}" if err.field else "webhook"
            raise

    async def write_user(self, user: str, checked: tuple[Target | None, object]) -> Json:
        target, raw = checked
        if target is None:
            await self.store.delete_user(user)
            return {"webhook": None}
        await self.store.put_user(user, target, self.kernel.clock())
        return {"webhook": self.target_json(target, shown=raw)}

    async def read_user(self, user: str) -> Json | None:
        target = await self.store.get_user(user)
        return None if target is None else {"webhook": self.target_json(target)}

    # -- sending to named targets (escalation, tools) -----------------------------------
    def step_timer(self, target: str, msg_id: str, note: Json, now: int) -> NewTimer:
        """The ``webhook.send`` timer posting ``note`` to the named ``target`` (the body
        rendered at each attempt from the target's format then), for an escalation
        step (``tocsin.kernel.channel.StepPoster``)."""
        return NewTimer(msg_id, SEND_KIND, target, now,
                        {"target": target, "note": note, "first": now})

    # -- timers ------------------------------------------------------------------------
    async def _decide(self, timer: Timer) -> list[NewTimer]:
        user, nid = str(timer.payload["user"]), timer.key
        note = await self.attention.still_wanted(user, nid, NAME)  # RetryLater: quiet
        if note is None:
            await self.suppressed("unwanted", user, nid)
            return []
        now = self.kernel.clock()
        # the same id on every attempt of this message: receivers deduplicate by it
        return [NewTimer(f"webhook.send:{nid}", SEND_KIND, nid, now,
                         {"user": user, "note": note, "first": now})]

    async def _send(self, timer: Timer) -> list[NewTimer]:
        assert self._client is not None
        payload = timer.payload
        user = payload.get("user")
        target = (await self.store.get_user(str(user)) if user is not None
                  else await self.store.get(str(payload["target"])))
        if target is None:
            self._report("no_target", timer, "given_up", reason="no_target")
            return []
        body = render(target.format, payload["note"], user)
        if len(body) > MAX_BODY_BYTES:
            body = render(target.format, {**payload["note"], "body": "", "data": None}, user)
        msg_id = timer.id
        # the signature's timestamp is the wall clock: receivers check it against theirs
        headers = {"content-type": "application/json", "user-agent": "Tocsin-Webhook",
                   **signed_headers(target.secret, msg_id, int(time.time()), body)}
        try:
            reply = await self._client.post(target.url, content=body, headers=headers)
        except Refused as exc:
            self._report("refused", timer, "given_up", reason=f"refused: {exc}")
            log.warning("webhook %s: refused: %s", msg_id, exc)
            return []
        except httpx.HTTPError as exc:
            return self._retry(timer, None, repr(exc))
        if 200 <= reply.status_code < 300:
            self._report("sent", timer, "sent", status=reply.status_code)
            return []
        if reply.status_code == 429 or reply.status_code >= 500 or reply.status_code == 408:
            wait = retry_after_ms(reply.headers.get("retry-after"), time.time())
            return self._retry(timer, wait, f"HTTP {reply.status_code}")
        # any other answer (3xx: no redirects are followed; 4xx) will not change
        self._report("gave_up", timer, "given_up", status=reply.status_code,
                     reason=f"HTTP {reply.status_code}")
        log.error("webhook %s: the receiver answered %d; not retried", msg_id,
                  reply.status_code)
        return []

    def _retry(self, timer: Timer, wait_ms: int | None, why: str) -> list[NewTimer]:
        self._report("error", timer, "failed", reason=why, attempt=timer.attempts)
        now = self.kernel.clock()
        first = int(timer.payload.get("first", now))
        if now - first >= int(self.settings.webhook_give_up_s * 1000):
            self._report("gave_up", timer, "given_up", reason=why,
                         attempts=timer.attempts)
            log.error("webhook %s: giving up after %d attempts: %s", timer.id,
                      timer.attempts, why)
            return []
        delay = wait_ms if wait_ms is not None else min(
            RETRY_MAX_MS, RETRY_BASE_MS * 2 ** max(0, timer.attempts - 1))
        log.warning("webhook %s: attempt %d failed (%s), retrying in %d ms", timer.id,
                    timer.attempts, why, delay)
        raise RetryLater(delay, why)

    def _report(self, result: str, timer: Timer, step: str, **detail: Any) -> None:
        """Count ``result`` and report ``webhook.<step>`` (the trail, the console's
        failures) for a user's own target. A named target's post (an escalation step)
        has no user: it is reported with ``target`` (its name) and no user; the
        console's failures list it, the trail (a notification's recipients) leaves it
        out, and its incident's timeline records the post."""
        user = timer.payload.get("user")
        if user is not None:
            self.outcome(result, str(user), timer.key, step, webhook=timer.id, **detail)
            return
        self.outcome(result, "", None, step)  # counted only: no user to report for
        kernel = self.kernel
        if kernel.observations.active:
            kernel.observations.report([Observation(
                f"{NAME}.{step}", kernel.clock(), None, None, "system",
                {"target": str(timer.payload.get("target", timer.key)),
                 "webhook": timer.id, **detail})])
