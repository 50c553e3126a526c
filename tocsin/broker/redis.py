"""Redis fan-out between Tocsin nodes: one Pub/Sub channel, one message per batch.

Live path: Redis Pub/Sub, not Redis Streams
-------------------------------------------
The database is the source of truth and every event carries a per-stream seq, so
the broker only has to say "something new, here it is" quickly; the hub delivers an
event only when its seq is the next one and otherwise reads the gap from the store.
What the broker must never do is lose a message *silently*: whenever a message may
have been missed, the node must learn that it has to catch up from the store.

* **Pub/Sub** pushes a ``PUBLISH`` to every subscribed node over a connection that
  is already open: one round trip, nothing stored in Redis, no trimming, no polling,
  and the cost is one message per node per publish, whatever the number of SSE
  connections. Messages can be lost only while a node's subscription is down (or a
  slow node is cut off by Redis's ``client-output-buffer-limit pubsub``). Both are
  visible to that node as a broken subscription connection, which this broker turns
  into ``on_state(False)``; re-subscribing reports ``on_state(True)`` and the hub
  sweeps stream heads from the store. A half-open connection (Redis frozen,
  network partition without a reset) is caught by a ``PING`` watchdog on the
  subscription connection.
* **Streams** (``XADD``/``XREAD``) would let a briefly disconnected node re-read
  what it missed from Redis, but that duplicates the store's job with a second,
  weaker log: it must be trimmed (``MAXLEN``), so a long partition still needs the
  store sweep; a restarted Redis without persistence loses it anyway; and every node
  would hold a blocking ``XREAD`` loop and Redis would keep the payloads in memory.
  The catch-up code path would exist twice, once of them rarely exercised.

So the design is: Pub/Sub for speed, the store for truth, and a truthful
``on_state`` for the hand-over between them.

How a node that was partitioned catches up
------------------------------------------
1. Its own clients: the subscription breaks or the watchdog fires, the node reports
   ``on_state(False)`` (the hub polls heads every ``--degraded-poll``), reconnects
   with jittered exponential backoff, and after ``SUBSCRIBE`` is confirmed reports
   ``on_state(True)``; the hub then reads every local stream's head from the store.
   Anything committed after the subscription is confirmed arrives over Pub/Sub,
   anything before it is found by the sweep, so nothing falls in between.
2. Other nodes' clients: events this node stored while it could not publish never
   reached the healthy nodes, which do not poll. That is the hub's business, not the
   broker's (messages are opaque here): a hub whose publish failed asks every node
   to sweep once the broker is back (see ``streams/hub.py``).

Any publish failure also counts as a lost subscription (``on_state(False)`` and a
fresh ``SUBSCRIBE``), so a node that could not even tell itself about an event
sweeps it from the store.

URL
---
``redis://[user:password@]host[:port][/db][?options]`` (also ``rediss://`` and
``unix:///path.sock``). Options read here (the rest go to redis-py; split off by
``tocsin/redis_url.py``, which the rate limiter shares):

``channel``        Pub/Sub channel (default ``tocsin``); nodes of one cluster share it.
``ping_interval``  idle time before the watchdog pings the subscription (default 5s).
``ping_timeout``   how long a ping, connect or publish may take (default 2s).
``backoff_max``    cap of the reconnect backoff (default 3s; it starts at 50ms).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection, Connection, parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from tocsin.broker.base import BrokerUnavailable, MessageHandler, StateHandler
from tocsin.redis_url import redact, split_url
from tocsin.units import parse_duration

log = logging.getLogger("tocsin.broker.redis")

DEFAULT_CHANNEL = "tocsin"
DEFAULT_PING_INTERVAL_S = 5.0
DEFAULT_PING_TIMEOUT_S = 2.0
BACKOFF_MIN_S = 0.05
DEFAULT_BACKOFF_MAX_S = 3.0
PUBLISH_POOL_SIZE = 16
DRAIN_MAX = 256
"""Messages the subscription takes in one go once a read completed, while whole or
partial replies are already buffered (then back to the watched read, which also
notices a resubscribe request)."""

_NETWORK_ERRORS = (RedisError, OSError, asyncio.TimeoutError)


class _Outage:
    __slots__ = ("attempts", "began", "last_error")

    def __init__(self, why: str) -> None:
        self.began = time.monotonic()
        self.attempts = 0
        self.last_error = why


def cause(exc: BaseException) -> str:
    """What went wrong, for the log: the exception's type and message, then those of
    what caused it (redis-py wraps the socket's error), never an empty message."""
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(parts) < 3:
        text = str(seen).strip()
        parts.append(f"{type(seen).__name__}: {text}" if text else type(seen).__name__)
        seen = seen.__cause__ or seen.__context__
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)) and len(parts) == 1:
        parts[0] += " (no answer in time)"
    return "; caused by ".join(parts)


class _SubscriptionLost(Exception):
    """The subscription connection stopped answering or said something unexpected."""


class RedisBroker:
    local = False
    """The :class:`~tocsin.broker.base.Broker` contract over one Redis Pub/Sub channel."""

    def __init__(self, url: str) -> None:
        self.url = redact(url)
        """The URL without its password (the hub logs it and ``/readyz`` may show it)."""
        redis_url, own = split_url(url)
        self.channel = own.get("channel") or DEFAULT_CHANNEL
        self.ping_interval_s = parse_duration(own.get("ping_interval", "")
                                              or str(DEFAULT_PING_INTERVAL_S))
        self.ping_timeout_s = parse_duration(own.get("ping_timeout", "")
                                             or str(DEFAULT_PING_TIMEOUT_S))
        self.backoff_max_s = parse_duration(own.get("backoff_max", "")
                                            or str(DEFAULT_BACKOFF_MAX_S))
        if self.ping_interval_s <= 0 or self.ping_timeout_s <= 0 or self.backoff_max_s <= 0:
            raise ValueError(f"broker timings must be positive in {redact(url)!r}")

        kwargs: dict[str, Any] = dict(parse_url(redis_url))
        self._connection_class: type[AbstractConnection] = kwargs.pop(
            "connection_class", Connection)
        kwargs.setdefault("socket_timeout", self.ping_timeout_s)
        kwargs.setdefault("socket_connect_timeout", self.ping_timeout_s)
        kwargs.setdefault("client_name", "tocsin")
        self._conn_kwargs = kwargs

        self._on_message: MessageHandler | None = None
        self._on_state: StateHandler | None = None
        self._subscribed = False
        self._reported: bool | None = None
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._first_attempt: asyncio.Future[None] | None = None
        self._resubscribe = asyncio.Event()
        self._pool: BlockingConnectionPool | None = None
        self._client: Redis | None = None
        self.subscriptions = 0
        """How many times the subscription was (re)established; for tests and metrics."""
        self._outage: _Outage | None = None
        """The current outage (``None`` while subscribed): logged once as it starts,
        once as it ends, whatever the number of reconnect attempts in between."""

    # -- the Broker protocol ---------------------------------------------------

    async def start(self, on_message: MessageHandler, on_state: StateHandler) -> None:
        if self._task is not None:
            raise RuntimeError("RedisBroker.start() called twice")
        self._on_message, self._on_state = on_message, on_state
        pub_kwargs = dict(self._conn_kwargs)
        # One retry on a fresh connection covers a pooled socket that died with a
        # restarted Redis; timeouts are not retried so a publish never blocks long.
        pub_kwargs["retry"] = Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
        self._pool = BlockingConnectionPool(
            connection_class=self._connection_class, max_connections=PUBLISH_POOL_SIZE,
            timeout=self.ping_timeout_s, **pub_kwargs)
        self._client = Redis(connection_pool=self._pool)
        loop = asyncio.get_running_loop()
        self._first_attempt = loop.create_future()
        self._task = loop.create_task(self._run(), name=f"tocsin-redis-{self.channel}")
        await asyncio.shield(self._first_attempt)

    async def publish(self, message: bytes) -> None:
        if self._closed or self._client is None:
            raise BrokerUnavailable("broker is closed")
        if not self._subscribed:
            # Reconnecting: fail fast instead of paying a connect timeout per event.
            raise BrokerUnavailable(f"Redis broker {self.url} is reconnecting")
        try:
            await self._client.publish(self.channel, message)
        except _NETWORK_ERRORS as exc:
            self._lost(f"publish failed: {cause(exc)}")
            raise BrokerUnavailable(f"Redis broker {self.url}: {exc}") from exc

    @property
    def healthy(self) -> bool:
        return self._subscribed and not self._closed

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._subscribed = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._client is not None:
            with contextlib.suppress(*_NETWORK_ERRORS):
                await self._client.aclose()
        if self._pool is not None:
            with contextlib.suppress(*_NETWORK_ERRORS):
                await self._pool.disconnect()

    # -- state -------------------------------------------------------------------

    def _report(self, up: bool) -> None:
        """Tell the hub; ``False`` only once per outage, ``True`` on every (re)subscribe."""
        if self._closed or self._on_state is None or (not up and self._reported is False):
            return
        self._reported = up
        try:
            self._on_state(up)
        except Exception:
            log.exception("broker state handler failed")

    def _lost(self, why: str) -> None:
        """The subscription may have missed messages: report it and subscribe afresh."""
        if self._subscribed and not self._closed:
            self._outage = _Outage(why)
            log.warning("Redis broker %s lost: %s; reconnecting (serving degraded: "
                        "streams poll the store meanwhile)", self.url, why)
        self._subscribed = False
        self._report(False)
        self._resubscribe.set()

    def _first_attempt_done(self) -> None:
        if self._first_attempt is not None and not self._first_attempt.done():
            self._first_attempt.set_result(None)

    # -- the subscription loop -----------------------------------------------------

    async def _run(self) -> None:
        backoff = BACKOFF_MIN_S
        try:
            while not self._closed:
                conn = self._connection_class(**{**self._conn_kwargs, "protocol": 2})
                established = False
                try:
                    await self._subscribe(conn)
                    established = True
                    self._subscribed = True
                    self._resubscribe.clear()
                    self.subscriptions += 1
                    outage, self._outage = self._outage, None
                    if outage is None:
                        log.info("Redis broker subscribed to %r on %s", self.channel,
                                 self.url)
                    else:
                        log.warning("Redis broker %s back after %.1fs (%d reconnect "
                                    "attempts; last error: %s); subscribed to %r again",
                                    self.url, time.monotonic() - outage.began,
                                    outage.attempts, outage.last_error, self.channel)
                    self._report(True)
                    self._first_attempt_done()
                    await self._listen(conn)
                except (*_NETWORK_ERRORS, _SubscriptionLost) as exc:
                    why = cause(exc)
                    self._lost(why)
                    if not established:
                        if self._outage is None:  # never connected yet: the node's start
                            self._outage = _Outage(why)
                            log.warning("Redis broker %s unavailable: %s; retrying "
                                        "(serving degraded meanwhile)", self.url, why)
                        else:
                            log.debug("Redis broker %s still unavailable: %s",
                                      self.url, why)
                        self._outage.attempts += 1
                        self._outage.last_error = why
                finally:
                    self._subscribed = False
                    with contextlib.suppress(*_NETWORK_ERRORS):
                        await conn.disconnect(nowait=True)
                self._first_attempt_done()
                if self._closed:
                    break
                if established:
                    backoff = BACKOFF_MIN_S
                # Full jitter so a fleet of nodes does not reconnect in lockstep.
                await asyncio.sleep(random.uniform(backoff / 2, backoff))
                backoff = min(backoff * 2, self.backoff_max_s)
        except asyncio.CancelledError:
            pass
        finally:
            self._first_attempt_done()

    async def _subscribe(self, conn: AbstractConnection) -> None:
        await conn.connect()  # type: ignore[no-untyped-call]
        await conn.send_command("SUBSCRIBE", self.channel, check_health=False)
        reply = await conn.read_response(timeout=self.ping_timeout_s)
        if reply is None:
            raise _SubscriptionLost("no reply to SUBSCRIBE")
        if not (isinstance(reply, list) and len(reply) >= 2 and reply[0] == b"subscribe"):
            raise _SubscriptionLost(f"unexpected reply to SUBSCRIBE: {reply!r}")

    async def _listen(self, conn: AbstractConnection) -> None:
        """Deliver messages until the connection breaks, a ping goes unanswered, or a
        publish failure asks for a fresh subscription. The pending read is never
        cancelled mid-message: it is awaited with :func:`asyncio.wait`."""
        loop = asyncio.get_running_loop()
        read: asyncio.Task[Any] | None = None
        resub = loop.create_task(self._resubscribe.wait())
        ping_sent: float | None = None
        try:
            while not self._closed:
                if read is None:
                    read = loop.create_task(conn.read_response(timeout=float("inf")))
                if ping_sent is None:
                    wait_s = self.ping_interval_s
                else:
                    wait_s = max(0.0, ping_sent + self.ping_timeout_s - time.monotonic())
                done, _ = await asyncio.wait({read, resub}, timeout=wait_s,
                                             return_when=asyncio.FIRST_COMPLETED)
                if resub in done:
                    raise _SubscriptionLost("resubscribe requested")
                if read not in done:
                    if ping_sent is not None:
                        raise _SubscriptionLost(
                            f"no answer to PING within {self.ping_timeout_s}s")
                    await conn.send_command("PING", check_health=False)
                    ping_sent = time.monotonic()
                    continue
                reply, read = read.result(), None
                ping_sent = None  # any traffic proves the connection alive
                self._dispatch(reply)
                # Then what is already buffered, in this loop turn: a read task and a
                # wait per message took two event-loop turns each, and a node busy with
                # its own work took few messages per second that way. Measured with
                # --workers 2 at 1,000 notifications/s: another worker's events arrived
                # up to 3 s after this worker's own (a store read for each gap), the
                # unicast row at 1,000/s. A reply cut off mid-way is waited for at most
                # the ping timeout (then the subscription counts as lost, as above).
                for _ in range(DRAIN_MAX):
                    if not await conn.can_read_destructive():
                        break
                    async with asyncio.timeout(self.ping_timeout_s):
                        reply = await conn.read_response(timeout=float("inf"))
                    self._dispatch(reply)
        finally:
            for task in (read, resub):
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task

    def _dispatch(self, reply: Any) -> None:
        if not isinstance(reply, list) or not reply:
            raise _SubscriptionLost(f"unexpected reply on subscription: {reply!r}")
        kind = reply[0]
        if kind == b"message" and len(reply) == 3:
            if self._on_message is not None:
                try:
                    self._on_message(bytes(reply[2]))
                except Exception:
                    log.exception("broker message handler failed")
        elif kind in (b"pong", b"subscribe"):
            pass
        else:
            raise _SubscriptionLost(f"unexpected reply on subscription: {reply!r}")
