"""The push channel (``tocsin.kernel.channel.Channel``): the VAPID identity, the
subscriptions users register, and the two timer kinds that carry a notification to
their devices (docs/push.md).

``push:<nid>`` (written by the publish, due at once or at the end of a quiet
period): if the notification is still unread and wanted (``still_wanted``) and the
user has no visible tab anywhere (presence), it fans out into one ``push.send``
timer per device, ``push:<nid>:<subscription>``, so each device is retried on its
own. ``push.send`` encrypts and POSTs the message and reads the push service's
answer: delivered, gone (the subscription is deleted), ``Retry-After`` (try again
then), refused (given up), or a transient failure (the scheduler backs off).

Delivery is at least once: a node dying after the push service accepted a message
but before its timer finished sends it again, and the device shows it once because
the service worker uses the notification id as the notification's ``tag``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import jwt
import orjson
from prometheus_client import Counter

from tocsin.attention.model import RANK
from tocsin.channels.push import webpush
from tocsin.channels.push.settings import PushNodeSettings
from tocsin.channels.push.validate import check_endpoint, check_keys
from tocsin.channels.push.vapid import Vapid, load_private_key, stored_key
from tocsin.channels.running import Running
from tocsin.errors import TocsinError
from tocsin.ids import now_ms
from tocsin.outbound import LocalService, Rules
from tocsin.scheduler import NewTimer, RetryLater, Timer
from tocsin.store.base import Json
from tocsin.store.hooks import in_marks
from tocsin.store.outbox import Happening

if TYPE_CHECKING:
    from fastapi import APIRouter

    from tocsin.channels.push.store import SqlPushStore
    from tocsin.kernel import Kernel
    from tocsin.kernel.channel import Attention

log = logging.getLogger("tocsin.push")

NAME = "push"
"""The channel's name in preferences, and the timer the publish writes:
``push:<notification id>`` (payload ``{"user"}``), due at once or at the end of a
quiet period: push it to the user's devices unless they have seen it."""
SEND_KIND = "push.send"
"""Timer ``push:<nid>:<subscription id>`` (payload ``{"user", "sub"}``): one device."""
MAX_SUBSCRIPTIONS = 20
"""Per user; registering one more removes the oldest."""
MAX_ATTEMPTS = 10
"""A device's message is given up after this many tries (or once its TTL passed)."""
MAX_TTL_S = 28 * 86400
"""How long a push service keeps a message for an offline device (4 weeks)."""
MAX_PAYLOAD_BYTES = 3072
"""The JSON before encryption (a push service takes 4096 bytes encrypted); the body
is shortened to fit."""
PRESENCE_TRIES = 8
"""While presence is unknown (a node of a cluster that just started: at most one
``--presence-interval``), the push waits until it is known, at most this many times
(a safety bound), then goes anyway."""
MIN_PRESENCE_WAIT_MS = 50
MAX_RETRY_AFTER_MS = 3600_000
READ_PURPOSE = "push-read"
READ_AUDIENCE = "tocsin:push-read"
"""The read token's ``aud``: a verifier that expects none (Tocsin's own, PyJWT's
default) refuses it, so it never passes for a session token."""
READ_TOKEN_TTL_S = 30 * 86400


class PushFailed(Exception):
    """A transient failure (5xx, network): the scheduler retries with backoff."""


_STEPS = {"sent": "sent", "gone": "gone", "refused": "given_up", "rejected": "given_up"}
"""The trail's step for a push service's answer (``webpush.Answer.outcome``); the
rest (retry) is ``push.retry``."""


class PushChannel(Running):
    """Web Push to the devices of people whose tab is closed."""

    name = NAME
    intrusiveness = 2
    """A device buzzes now: more intrusive than an email (``low`` goes by email only)."""

    def __init__(self, settings: PushNodeSettings) -> None:
        self.settings = settings
        super().__init__(Counter(
            "tocsin_push_sent_total", "Web Push outcomes per device message (sent, gone: "
            "subscription deleted, retry: Retry-After, error: retried with backoff, "
            "rejected, refused: address not allowed, expired: given up) and per "
            "notification not pushed (visible: a tab showed it, unwanted: read or no "
            "longer wanted)", ["result"], registry=None))
        self._store: SqlPushStore | None = None
        self._vapid: Vapid | None = None
        self._lock = asyncio.Lock()
        self._local: tuple[LocalService, ...] = ()

    @property
    def rules(self) -> Rules:
        """Where push requests may go (tocsin.outbound): public addresses; loopback
        too with ``--push-allow-insecure``; and the local services :meth:`accept_local`
        named."""
        return Rules(allow_loopback=self.settings.push_allow_insecure, local=self._local)

    def accept_local(self, port: int, path: str) -> None:
        """Also accept endpoints of one push service on this machine: a loopback
        address, ``port``, under ``path`` (the demo's own; call before :meth:`start`)."""
        self._local = (*self._local, LocalService(port, path))

    # -- the rule (pure: inside the publish's transaction) -----------------------------
    def due(self, type_prefs: Mapping[str, Any], priority: str, now: int,
            start: int) -> int | None:
        """At once (or at the quiet period's end) from ``pushMinPriority`` up."""
        if RANK[priority] < RANK[type_prefs.get("pushMinPriority", "high")]:
            return None
        return start

    def reachable_sql(self, n: int) -> str:
        """Users with at least one device."""
        return ("SELECT DISTINCT user_id FROM tocsin_push_subscriptions WHERE user_id IN ("
                + in_marks(n) + ")")

    # -- lifecycle -------------------------------------------------------------------
    def router(self) -> APIRouter:
        from tocsin.channels.push.routes import routes

        return routes(self)

    async def start(self, kernel: Kernel, attention: Attention) -> None:
        from tocsin.channels.push.store import SqlPushStore

        self.attach(kernel, attention)
        if not kernel.has_database:
            return
        self._store = SqlPushStore(kernel.db)
        self.open_client(self.rules)
        kernel.timers.on(NAME, self._push)
        kernel.timers.on(SEND_KIND, self._send)
        await self.vapid()  # created now if this is the first start, not on a first push

    @property
    def store(self) -> SqlPushStore:
        if self._store is None:
            raise TocsinError("not_found", "Web Push needs a SQL store.")
        return self._store

    async def vapid(self) -> Vapid:
        """The server's VAPID identity: the configured key, else the database's."""
        if self._vapid is None:
            async with self._lock:
                if self._vapid is None:
                    given = self.settings.vapid_private_key
                    key = (load_private_key(given) if given
                           else await stored_key(self.store, now_ms()))
                    self._vapid = Vapid(key, self.settings.vapid_subject)
        return self._vapid

    def _clock(self) -> int:
        return self.kernel.clock()

    # -- subscriptions ---------------------------------------------------------------
    async def subscribe(self, user: str, endpoint: str, p256dh: str, auth: str,
                        user_agent: str | None) -> str:
        endpoint = check_endpoint(endpoint, self.rules)
        p256dh, auth = check_keys(p256dh, auth)
        sid, evicted = await self.store.subscribe(
            user, endpoint, p256dh, auth, (user_agent or "")[:300] or None, now_ms(),
            MAX_SUBSCRIPTIONS)
        if evicted:
            log.info("user %r has more than %d push subscriptions: removed the oldest %s",
                     user, MAX_SUBSCRIPTIONS, evicted)
        return sid

    async def subscriptions(self, user: str) -> list[Json]:
        return [{"id": s.id, "endpoint": webpush.origin(s.endpoint), "userAgent": s.user_agent,
                 "createdAt": s.created_at, "lastSentAt": s.last_sent_at}
                for s in await self.store.list(user)]

    async def unsubscribe(self, user: str, id: str) -> bool:
        return await self.store.delete(id, user)

    # -- the read token --------------------------------------------------------------
    def read_token(self, user: str, nid: str) -> str | None:
        """A token that marks ``nid`` read for ``user`` and does nothing else
        (``POST /api/push/read``): the device needs no session to do it."""
        secret = self.settings.jwt_secret
        if not secret:
            return None
        now = int(time.time())
        return jwt.encode({"sub": user, "nid": nid, "purpose": READ_PURPOSE,
                           "aud": READ_AUDIENCE, "iat": now, "exp": now + READ_TOKEN_TTL_S},
                          secret, algorithm="HS256")

    async def mark_read(self, token: str) -> None:
        try:
            claims = jwt.decode(token, self.settings.jwt_secret, algorithms=["HS256"],
                                audience=READ_AUDIENCE,
                                options={"require": ["sub", "nid", "exp", "purpose", "aud"]})
        except jwt.ExpiredSignatureError:
            raise TocsinError("unauthorized", "The read token has expired.") from None
        except (jwt.InvalidAudienceError, jwt.MissingRequiredClaimError):
            raise TocsinError("forbidden", "Not a push read token (readToken of a push "
                              "message).") from None
        except jwt.InvalidTokenError as exc:
            raise TocsinError("unauthorized", f"Invalid read token: {exc}.") from None
        user, nid = claims["sub"], claims["nid"]
        if claims["purpose"] != READ_PURPOSE or not isinstance(user, str) \
                or not isinstance(nid, str):
            raise TocsinError("forbidden", "Not a push read token.")
        await self.kernel.set_read(user, [nid], True)

    # -- timers ----------------------------------------------------------------------
    async def _push(self, timer: Timer) -> list[NewTimer]:
        """``push:<nid>``: decide, then one ``push.send`` per device."""
        user, nid = str(timer.payload["user"]), timer.key
        if await self.attention.still_wanted(user, nid, NAME) is None:
            await self.suppressed("unwanted", user, nid)
            return []
        presence = self.kernel.hub.presence
        active = (await presence.active([user])).get(user)
        if active is None and timer.attempts <= PRESENCE_TRIES:
            # due again the moment presence is known, not at a fixed 2 s step
            raise RetryLater(max(MIN_PRESENCE_WAIT_MS, int(presence.unknown_for() * 1000)),
                             "presence not known yet")
        if active:
            self.outcome("visible", user, nid, "suppressed", reason="tab_visible")
            return []  # a visible tab shows it
        now = self._clock()
        sends = [NewTimer(f"push:{nid}:{s.id}", SEND_KIND, nid, now, {"user": user, "sub": s.id})
                 for s in await self.store.list(user)]
        for s in sends:
            self.outcome(None, user, nid, "queued", device=s.payload["sub"])
        if sends:  # due now: the scheduler looks again as soon as this timer is finished
            self.kernel.timers.kick()
        return sends

    async def _send(self, timer: Timer) -> list[NewTimer]:
        """``push:<nid>:<sub>``: one message to one device."""
        user, sid, nid = str(timer.payload["user"]), str(timer.payload["sub"]), timer.key
        note = await self.attention.still_wanted(user, nid, NAME)
        if note is None:
            await self.suppressed("unwanted", user, nid)
            return []
        sub = await self.store.get(sid)
        if sub is None or sub.user != user:  # unsubscribed, or the device changed hands
            return []
        ttl_s = ttl_of(note, now_ms())
        if ttl_s <= 0:
            log.warning("push %s to %s: given up, its TTL passed", nid, sid)
            self.outcome("expired", user, nid, "given_up", device=sid, reason="ttl_passed")
            return []
        vapid = await self.vapid()
        assert self._client is not None
        body = webpush.encrypt(self.payload(user, note), sub.p256dh, sub.auth)
        answer = await webpush.send(self._client, sub.endpoint, body, webpush.headers(
            vapid, sub.endpoint, ttl_s, str(note["priority"]), nid))
        self.outcome(answer.outcome, user, nid, _STEPS.get(answer.outcome, "retry"),
                     device=sid, status=answer.status, **({"reason": answer.detail}
                                                          if answer.detail else {}))
        if answer.outcome == "sent":
            await self.store.sent(sid, now_ms())
            return []
        if answer.outcome == "gone":
            log.info("push subscription %s of %r is gone (%d): deleted", sid, user,
                     answer.status)
            detail = {"device": sid, "status": answer.status,
                      **({"reason": answer.detail} if answer.detail else {})}
            await self.store.delete(sid, also=[Happening("push.gone", user, nid, None,
                                                         detail)])
            return []
        if answer.outcome == "refused":  # its address is not allowed (tocsin.outbound)
            log.warning("push %s to %s: not sent, %s", nid, webpush.origin(sub.endpoint),
                        answer.detail)
            return []
        if answer.outcome == "rejected":
            log.warning("push %s to %s refused by the push service (%d %s): given up",
                        nid, webpush.origin(sub.endpoint), answer.status, answer.detail)
            return []
        if timer.attempts >= MAX_ATTEMPTS:
            log.warning("push %s to %s: given up after %d attempts (%d %s)", nid,
                        webpush.origin(sub.endpoint), timer.attempts, answer.status,
                        answer.detail)
            self.outcome("expired", user, nid, "given_up", device=sid, status=answer.status,
                         reason="attempts")
            return []
        if answer.outcome == "retry" and answer.retry_after_ms is not None:
            raise RetryLater(min(answer.retry_after_ms, MAX_RETRY_AFTER_MS, ttl_s * 1000),
                             f"push service answered {answer.status} with Retry-After")
        raise PushFailed(f"{webpush.origin(sub.endpoint)}: {answer.status or ''} "
                         f"{answer.detail}".strip())

    def payload(self, user: str, note: Json) -> bytes:
        """The message the service worker receives (JSON, at most
        :data:`MAX_PAYLOAD_BYTES`: the body is cut to fit, then the url dropped)."""
        msg: dict[str, Any] = {
            "id": note["id"], "type": note["type"], "title": note["title"],
            "body": note.get("body") or "", "url": note.get("url"),
            "priority": note["priority"], "timestamp": note.get("timestamp"),
        }
        token = self.read_token(user, str(note["id"]))
        if token is not None:
            msg["readToken"] = token
        return fit(msg, MAX_PAYLOAD_BYTES)


def ttl_of(note: Json, now: int) -> int:
    """Seconds a push service should keep the message: until 4 weeks after the
    notification was created, or its ``expiresAt`` if sooner (wall clock)."""
    deadline = int(note.get("timestamp") or now) + MAX_TTL_S * 1000
    expires = note.get("expiresAt")
    if isinstance(expires, int):
        deadline = min(deadline, expires)
    return (deadline - now) // 1000


def fit(msg: dict[str, Any], limit: int) -> bytes:
    """``msg`` as JSON of at most ``limit`` bytes: the body shortened (ending in an
    ellipsis) as little as needed, then the url left out, then the title shortened."""
    raw = orjson.dumps(msg)
    for field in ("body", "url", "title"):
        text = msg.get(field)
        if len(raw) <= limit or not text:
            continue
        if field == "url":
            msg[field] = None
        else:  # the longest prefix that fits (JSON escapes make bytes hard to predict)
            text = str(text)
            lo, hi = 0, len(text)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                msg[field] = text[:mid] + "…"
                if len(orjson.dumps(msg)) <= limit:
                    lo = mid
                else:
                    hi = mid - 1
            msg[field] = text[:lo] + "…" if lo else ""
        raw = orjson.dumps(msg)
    return raw
