"""The node's timer loop: claims due timers (``TimerStore.claim``) and runs the
handler registered for their kind; a handler returns the timers that follow
(stored in the same transaction that deletes the fired one).

Each claimed timer runs as its own task, so a slow handler (a webhook receiver
hanging until its 10 s timeout) holds only its own timer: the loop keeps claiming
what else is due (an escalation step) while it runs. Running timers are bounded per
kind (:data:`PER_KIND`) and overall (:data:`MAX_RUNNING`); a kind at its bound is left
out of the claim (``skip_kinds``) rather than claimed and made to wait, so every
claimed timer starts at once and its lease (30 s) runs from its start, never from a
wait in a queue: no other node can claim it while its handler runs (handlers end
well within the lease: their own requests time out first).

A timer that can never succeed must not be retried for ever, invisibly: one whose
handler fails :data:`MAX_FAILURES` times, or fails in a way no retry can change
(:class:`GiveUp`, a 4xx ``TocsinError``, a validation error, a value the database
cannot store), is deleted after the kind's give-up hook ran (escalation marks its
incident ``failed``), logged at ERROR and counted (``tocsin_timers_given_up_total``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import Counter
from collections.abc import Awaitable, Callable

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError

from tocsin.errors import TocsinError
from tocsin.scheduler.base import Clock, NewTimer, Timer, TimerStore

log = logging.getLogger("tocsin.scheduler")

Handler = Callable[[Timer], Awaitable[list[NewTimer]]]
GiveUpHook = Callable[[Timer, str], Awaitable[None]]
"""Called with the timer and why, before a timer that can never succeed is deleted."""
DEFAULT_LEASE_MS = 30_000
MAX_BACKOFF_MS = 60_000
MAX_RUNNING = 32
"""Timers running at once on a node (a task each). Kept small: every running handler
may hold a database connection (the pool is 10 + 20 on PostgreSQL); with 32 of one
kind, 200 concurrent incidents over two nodes missed their 90 s (test_escalation;
the pool is the likely cause, not verified)."""
PER_KIND = 8
"""Timers of one kind running at once: a kind whose receivers all hang (webhook
sends) fills its own bound, never the node's, so other kinds keep running."""
MAX_FAILURES = 15
"""Failed runs before a timer is given up: with the backoff (1, 2, 4 … 60 s) about
ten minutes of failing, longer than a database failover; a database that is away
altogether fails the claims, which count nothing."""


class GiveUp(Exception):
    """Raised by a handler: this timer can never succeed; delete it now (after the
    kind's give-up hook) instead of retrying."""


class RetryLater(Exception):
    """Raised by a handler: not done, try again in ``delay_ms`` (e.g. a push service's
    ``Retry-After``) instead of the scheduler's exponential backoff."""

    def __init__(self, delay_ms: int, reason: str = "") -> None:
        super().__init__(reason or f"retry in {delay_ms} ms")
        self.delay_ms = max(0, int(delay_ms))


def node_id() -> str:
    return f"{os.getpid()}-{os.urandom(4).hex()}"


class Scheduler:
    def __init__(self, timers: TimerStore, clock: Clock, *, poll_s: float = 1.0,
                 lease_ms: int = DEFAULT_LEASE_MS, owner: str | None = None,
                 batch: int = 50, max_running: int = MAX_RUNNING,
                 per_kind: int = PER_KIND) -> None:
        self.timers = timers
        self.clock = clock
        self.poll_s = poll_s
        self.lease_ms = lease_ms
        self.owner = owner or node_id()
        self.batch = batch
        self.max_running = max_running
        self.per_kind = per_kind
        self._running: set[asyncio.Task[bool]] = set()
        self._by_kind: Counter[str] = Counter()
        self.handlers: dict[str, Handler] = {}
        self.give_up_hooks: dict[str, GiveUpHook] = {}
        self.on_given_up: Callable[[str], None] | None = None
        """Counts a timer given up, by kind (the node's metric)."""
        self.fired = 0
        self._task: asyncio.Task[None] | None = None
        self._started = False
        self._wake = asyncio.Event()

    def on(self, kind: str, handler: Handler, give_up: GiveUpHook | None = None) -> None:
        """Register ``kind``'s handler; only before :meth:`start`. Once the loop runs, a
        due timer of a kind not yet registered would be claimed, fail with "no handler"
        and back off (issue 23): every kind is known before the first claim."""
        if self._started:
            raise RuntimeError(f"timer kind {kind!r} registered after the scheduler "
                               "started: register every kind before start()")
        self.handlers[kind] = handler
        if give_up is not None:
            self.give_up_hooks[kind] = give_up

    def kick(self) -> None:
        """Look for due timers now rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        """Start claiming: once, after every kind is registered (:meth:`on`)."""
        if self._started:
            raise RuntimeError("the scheduler is started once")
        self._started = True
        self._task = asyncio.create_task(self._loop(), name="tocsin-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        running = list(self._running)
        for task in running:  # their leases expire; another node runs them again
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                # claim while there is room and a full claim says more may be due
                while (limit := self._room()) and len(await self._start_due(limit)) >= limit:
                    pass
            except Exception as exc:  # the database may be away; next poll
                log.warning("timer poll failed: %r", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)

    def _room(self) -> int:
        """How many timers the next claim may take: the free places overall, and no
        more than any kind still claimable has left (so a kind never exceeds its
        bound, whatever the claim returns)."""
        free = self.max_running - len(self._running)
        for n in self._by_kind.values():
            if n < self.per_kind:
                free = min(free, self.per_kind - n)
        return max(0, min(free, self.batch, self.per_kind))

    async def _start_due(self, limit: int, ids: list[str] | None = None
                         ) -> list[asyncio.Task[bool]]:
        """Claim up to ``limit`` due timers (none of a kind at its bound) and start
        each as its own task."""
        full = [k for k, n in self._by_kind.items() if n >= self.per_kind]
        claimed = await self.timers.claim(self.owner, self.clock(), self.lease_ms,
                                          limit, ids, skip_kinds=full)
        return [self._spawn(t) for t in claimed]

    def _spawn(self, timer: Timer) -> asyncio.Task[bool]:
        self._by_kind[timer.kind] += 1
        task = asyncio.create_task(self.fire(timer), name=f"tocsin-timer-{timer.kind}")
        self._running.add(task)

        def done(t: asyncio.Task[bool]) -> None:
            self._running.discard(t)
            self._by_kind[timer.kind] -= 1
            if not self._by_kind[timer.kind]:
                del self._by_kind[timer.kind]
            if not t.cancelled() and t.exception() is not None:
                # fire() handles the handler's failures; this is the store failing
                # under it: the lease expires and the timer runs again
                log.warning("timer %s (%s): %r", timer.id, timer.kind, t.exception())
            self._wake.set()  # room again: claim what waited for it

        task.add_done_callback(done)
        return task

    async def run_due(self, ids: list[str] | None = None) -> int:
        """Claim what is due now (only ``ids`` if given), run it and wait for it;
        how many were claimed (the loop does not wait: it keeps claiming)."""
        tasks = await self._start_due(max(1, self._room()), ids)
        if tasks:
            await asyncio.gather(*tasks)
        return len(tasks)

    async def fire(self, timer: Timer) -> bool:
        """Run one claimed timer; ``True`` if it finished."""
        handler = self.handlers.get(timer.kind)
        try:
            if handler is None:
                raise LookupError(f"no handler for timer kind {timer.kind!r}")
            then = await handler(timer)
            done = await self.timers.finish(timer, then, self.clock())
        except RetryLater as later:
            log.info("timer %s (%s): %s", timer.id, timer.kind, later)
            with contextlib.suppress(Exception):
                await self.timers.release(timer, self.clock() + later.delay_ms)
            return False
        except Exception as exc:
            if permanent(exc) or timer.attempts >= MAX_FAILURES:
                await self._give_up(timer, exc)
                return False
            backoff = min(MAX_BACKOFF_MS, 1000 * 2 ** min(timer.attempts, 16))
            log.warning("timer %s (%s) failed, retrying in %d ms: %r",
                        timer.id, timer.kind, backoff, exc)
            with contextlib.suppress(Exception):
                await self.timers.release(timer, self.clock() + backoff)
            return False
        if done:
            self.fired += 1
        else:
            log.warning("timer %s: lease lost before it finished", timer.id)
        return done

    async def _give_up(self, timer: Timer, exc: Exception) -> None:
        """The hook first, then the delete: a node dying in between leaves the timer
        to fail and be given up again, and hooks are idempotent."""
        reason = str(exc) or type(exc).__name__
        log.error("timer %s (%s) given up after %d attempts: %s", timer.id, timer.kind,
                  timer.attempts, reason)
        hook = self.give_up_hooks.get(timer.kind)
        try:
            if hook is not None:
                await hook(timer, reason)
            await self.timers.finish(timer, [], self.clock())
        except Exception as failed:  # retried as a failure of the timer itself
            log.warning("timer %s: giving up failed (%r); retrying later", timer.id, failed)
            with contextlib.suppress(Exception):
                await self.timers.release(timer, self.clock() + MAX_BACKOFF_MS)
            return
        if self.on_given_up is not None:
            self.on_given_up(timer.kind)


def permanent(exc: Exception) -> bool:
    """Whether no retry can change this failure: the handler said so, or its input is
    refused: a 4xx other than a rate limit (which passes), or a value the database
    cannot store (SQLSTATE class 22, e.g. a NUL character on PostgreSQL)."""
    if isinstance(exc, GiveUp | ValidationError):
        return True
    if isinstance(exc, DBAPIError):
        return str(getattr(exc.orig, "sqlstate", "") or "").startswith("22")
    return isinstance(exc, TocsinError) and 400 <= exc.status < 500 and exc.status != 429
