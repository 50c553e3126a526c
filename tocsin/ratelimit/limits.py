"""Which requests are limited, by which bucket: the gate's side of rate limiting.

Route classes (each a bucket per principal):

- ``topic``: a subscriber posting a topic event (``POST /api/topics/{t}/events``),
  ``--rate-topic-posts`` per user (on by default: the amplification the limit exists
  for is one browser posting events every follower receives);
- ``read``: every other request of a subscriber, **stream connects included** (one
  token per connect: a stream is one replay read however long it stays open, and a
  client reconnecting in a loop is exactly what the bucket should stop),
  ``--rate-reads`` per user;
- ``publish``: a publisher's ``POST /api/notifications`` (and ``/bulk``), topic events
  and ``PATCH``/``DELETE /api/notifications/by-key/…``, ``--rate-publish`` for the whole
  deployment (one bucket for every API key: the keys are one publisher, docs/deploy.md Security)
  (off by default: then no bucket is touched at all). Its tokens count
  **notifications**, not requests: the gate admits a request for one token, and the
  route charges the rest of its work once it is known (:meth:`Limits.charge`): a
  publish one per recipient (a bulk publish: of every item it stored), an escalation
  its potential fan-out, an update or retract by key one per copy it changed. The
  bucket may go into debt, which the following requests wait out (one request of
  10,000 recipients is one request, and then 10,000 tokens owed).

The check runs in ``Gate.admit`` after authentication and before any body is read.
The memory limiter answers inline; the Redis limiter's check is awaited by
:class:`Throttled` in front of the route.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

from tocsin.asgi import Headers, send_error
from tocsin.auth import Principal, Publisher
from tocsin.ratelimit import Rate, RateLimited, RateLimiter, limiter_from_url
from tocsin.ratelimit.memory import MemoryLimiter
from tocsin.units import parse_rate

TOPICS_PREFIX = "/api/topics/"
EVENTS_SUFFIX = "/events"
PUBLISH_PATH = "/api/notifications"
BULK_PATH = "/api/notifications/bulk"
BY_KEY_PREFIX = "/api/notifications/by-key/"
PUBLISH_BUCKET = "publish"
"""Every API key spends this one bucket: a deployment's keys are one publisher (a
rotation must not double the budget)."""

Pending = tuple[str, Rate]
"""A check still to make (the Redis limiter): bucket key and rate."""


class RateSettings(Protocol):
    """The settings the limits are built from (``tocsin.config.Settings`` has them):
    the limiter sits below the settings, which are composed of every channel's part,
    so it names only what it reads."""

    broker_url: str
    """``memory://`` or ``redis://…``: where the buckets live, as for the broker."""
    rate_topic_posts: str
    rate_reads: str
    rate_publish: str


class Limits:
    def __init__(self, limiter: RateLimiter, topic_posts: Rate | None, reads: Rate | None,
                 publish: Rate | None) -> None:
        self.limiter = limiter
        self.inline = limiter if isinstance(limiter, MemoryLimiter) else None
        self.topic_posts, self.reads, self.publish = topic_posts, reads, publish

    @classmethod
    def from_settings(cls, settings: RateSettings, on_error: Any = None) -> Limits:
        return cls(limiter_from_url(settings.broker_url, on_error),
                   parse_rate(settings.rate_topic_posts), parse_rate(settings.rate_reads),
                   parse_rate(settings.rate_publish))

    def rule(self, method: str, path: str, who: Principal) -> Pending | None:
        """The bucket this request spends a token of, if any."""
        topic_post = method == "POST" and path.startswith(TOPICS_PREFIX) \
            and path.endswith(EVENTS_SUFFIX)
        if isinstance(who, Publisher):
            if self.publish is not None and (
                    topic_post or (method == "POST" and path in (PUBLISH_PATH, BULK_PATH))
                    or (method in ("PATCH", "DELETE") and path.startswith(BY_KEY_PREFIX))):
                return PUBLISH_BUCKET, self.publish
            return None
        if topic_post:
            return None if self.topic_posts is None else ("topic:" + who.user, self.topic_posts)
        return None if self.reads is None else ("read:" + who.user, self.reads)

    def check(self, method: str, path: str, who: Principal) -> Pending | None:
        """Raises :class:`RateLimited` if the memory limiter refuses; returns the check
        to await when the limiter is remote."""
        pending = self.rule(method, path, who)
        if pending is None:
            return None
        if self.inline is not None:
            wait = self.inline.take_now(*pending)
            if wait > 0:
                raise RateLimited(wait)
            return None
        return pending

    async def charge(self, who: Publisher, cost: int) -> None:
        """Spend ``cost`` more of ``who``'s publish bucket (the request itself was
        admitted for one token): the notifications it makes beyond the first. Never
        refuses; the debt delays ``who``'s next requests."""
        if self.publish is None or cost <= 0:
            return
        key = PUBLISH_BUCKET
        if self.inline is not None:
            self.inline.charge_now(key, self.publish, cost)
        else:
            await self.limiter.charge(key, self.publish, cost)

    def hold(self, app: Any) -> None:
        """Close a remote limiter with the application (an ``on_start`` hook's task,
        cancelled at shutdown)."""
        if self.inline is None:
            app.state.on_start.append(self._start)

    async def _start(self, app: Any) -> None:
        app.state.tasks.append(asyncio.create_task(self._close_at_shutdown()))

    async def _close_at_shutdown(self) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            with contextlib.suppress(Exception):
                await self.limiter.close()


class Throttled:
    """Awaits the remote check, then serves the route (or answers 429)."""

    __slots__ = ("app", "cors", "limits", "on_refused", "pending")

    def __init__(self, limits: Limits, pending: Pending, app: ASGIApp, cors: Headers,
                 on_refused: Any) -> None:
        self.limits, self.pending, self.app, self.cors = limits, pending, app, cors
        self.on_refused = on_refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        wait = await self.limits.limiter.take(*self.pending)
        if wait > 0:
            err = RateLimited(wait)
            self.on_refused(err.code)
            await send_error(send, err, [*self.cors, *err.headers])
            return
        await self.app(scope, receive, send)
