"""Publishes that overlap in time, sent together: the publishers' batching into
``POST /api/notifications/bulk`` (docs/python.md, "Batching").

A ``publish`` call that starts while other publishes of the same publisher are in
flight waits up to ``linger_ms`` for more to join it, then its batch (at most
``max_batch`` items) goes as one bulk request; a lone call, or a batch of one, goes
as the plain ``POST /api/notifications``, so a program that publishes one at a time
pays no linger. Every call keeps its own idempotency key, its own result, its own
error and its own retries: an attempt's outcome is the item's reply (or the whole
request's failure, shared by its items), and a retryable one makes that call wait
its backoff and join a later batch with the same key.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from tocsin.client._errors import TocsinAPIError, TocsinConnectionError, api_error, check
from tocsin.client._http import RETRY_STATUSES, UNSURE_STATUSES, RetryPolicy

PUBLISH_PATH = "/api/notifications"
BULK_PATH = "/api/notifications/bulk"
MAX_BATCH = 1000
"""The server's limit on items per bulk request."""
MAX_LINGER_MS = 1000.0


def check_batching(linger_ms: float, max_batch: int) -> None:
    if not 0 <= linger_ms <= MAX_LINGER_MS:
        raise ValueError(f"linger_ms must be between 0 and {MAX_LINGER_MS:g}")
    if not 1 <= max_batch <= MAX_BATCH:
        raise ValueError(f"max_batch must be between 1 and {MAX_BATCH}")


def batchable(payload: dict[str, Any]) -> bool:
    """Whether a publish may share a bulk request: it has an idempotency key (so its
    retries are safe) and is strict JSON (a value JSON cannot carry, such as NaN, is
    sent alone, so only its own call gets the server's error)."""
    if "idempotencyKey" not in payload or "escalation" in payload:
        return False
    try:
        json.dumps(payload, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


@dataclass(slots=True)
class Attempt:
    """One try of one publish: the item's status and body, or the request's failure."""

    status: int = 0
    body: Any = None
    response: httpx.Response | None = None
    """The whole request's reply when it failed as a whole (its ``Retry-After``)."""
    error: Exception | None = None
    """A transport error, or the whole reply's error (not JSON, wrong length...)."""


def attempts_of(items: list[dict[str, Any]], reply: httpx.Response | None,
                error: Exception | None) -> list[Attempt]:
    """Each item's outcome of one request (bulk, or single for one item)."""
    if error is not None:
        return [Attempt(error=error) for _ in items]
    assert reply is not None
    if reply.status_code >= 400 or (len(items) > 1 and reply.status_code != 200):
        return [Attempt(reply.status_code, response=reply) for _ in items]
    try:
        body = check(reply)
        if len(items) == 1:
            return [Attempt(reply.status_code, body)]
        results = body["results"]
        if len(results) != len(items):
            raise ValueError("one result per item")
        return [Attempt(int(r["status"]), r) for r in results]
    except (TocsinAPIError, ValueError, KeyError, TypeError) as exc:
        wrong = exc if isinstance(exc, TocsinAPIError) else TocsinAPIError(
            reply.status_code, "invalid_response", f"unexpected bulk reply: {exc!r}")
        return [Attempt(error=wrong) for _ in items]


def request_of(items: list[dict[str, Any]]) -> tuple[str, Any]:
    if len(items) == 1:
        return PUBLISH_PATH, items[0]
    return BULK_PATH, {"notifications": items}


def should_retry(policy: RetryPolicy, attempt: int, a: Attempt) -> bool:
    """The single call's rule (``RetryPolicy.should_retry``) for one item; every
    batched item has an idempotency key, so it is always repeatable."""
    if attempt > policy.retries:
        return False
    if a.error is not None:
        return isinstance(a.error, httpx.TransportError)  # NOT_SENT ones included
    return a.status in RETRY_STATUSES or a.status in UNSURE_STATUSES


def result_of(base: str, a: Attempt) -> Any:
    """The item's reply body, or its exception."""
    if isinstance(a.error, httpx.TransportError):
        raise TocsinConnectionError(f"cannot reach {base}: {a.error}") from a.error
    if a.error is not None:
        raise a.error
    if a.response is not None:
        return check(a.response)  # raises: the whole request failed
    if a.status >= 400:
        err = (a.body or {}).get("error") or {}
        raise api_error(a.status, str(err.get("code", "unknown")),
                        str(err.get("message", "")), err.get("field"))
    return a.body


@dataclass(slots=True)
class _Slot:
    payload: dict[str, Any]
    done: threading.Event = field(default_factory=threading.Event)
    outcome: Attempt | None = None


class SyncBatcher:
    """Batching for :class:`~tocsin.client.Publisher` (threads): the first call of a
    batch leads it (lingers, sends, hands every member its outcome)."""

    def __init__(self, client: httpx.Client, policy: RetryPolicy, linger_ms: float,
                 max_batch: int) -> None:
        self.client, self.policy = client, policy
        self.linger_s, self.max_batch = linger_ms / 1000, max_batch
        self._lock = threading.Lock()
        self._queue: list[_Slot] = []
        self._collecting = False
        self._in_flight = 0

    def publish(self, payload: dict[str, Any]) -> Any:
        with self._lock:
            self._in_flight += 1
        try:
            attempt = 0
            while True:
                attempt += 1
                a = self._once(payload)
                if not should_retry(self.policy, attempt, a):
                    return result_of(str(self.client.base_url), a)
                time.sleep(self.policy.delay(attempt, a.response))
        finally:
            with self._lock:
                self._in_flight -= 1

    def _once(self, payload: dict[str, Any]) -> Attempt:
        slot = _Slot(payload)
        with self._lock:
            self._queue.append(slot)
            lead = not self._collecting
            self._collecting = True
            others = self._in_flight > 1
        if lead:
            try:
                if others and self.linger_s > 0:
                    time.sleep(self.linger_s)  # the calls in flight with this one may join
            finally:  # even interrupted, the leader sends what it collected
                with self._lock:
                    taken, self._queue = self._queue, []
                    self._collecting = False
                for start in range(0, len(taken), self.max_batch):
                    self._send(taken[start:start + self.max_batch])
        slot.done.wait()
        assert slot.outcome is not None
        return slot.outcome

    def _send(self, slots: list[_Slot]) -> None:
        items = [s.payload for s in slots]
        reply: httpx.Response | None = None
        error: Exception | None = None
        path, body = request_of(items)
        try:
            reply = self.client.post(path, json=body)
        except httpx.TransportError as exc:
            error = exc
        except Exception as exc:  # never leave a member waiting
            error = exc
        for s, a in zip(slots, attempts_of(items, reply, error), strict=True):
            s.outcome = a
            s.done.set()


class AsyncBatcher:
    """Batching for :class:`~tocsin.client.AsyncPublisher`: a flush scheduled on the
    loop per batch, one task per request."""

    def __init__(self, client: httpx.AsyncClient, policy: RetryPolicy, linger_ms: float,
                 max_batch: int) -> None:
        self.client, self.policy = client, policy
        self.linger_s, self.max_batch = linger_ms / 1000, max_batch
        self._queue: list[tuple[dict[str, Any], asyncio.Future[Attempt]]] = []
        self._pending = False
        """A flush is scheduled (the batch is being collected)."""
        self._sending: set[asyncio.Task[None]] = set()
        self._in_flight = 0

    async def publish(self, payload: dict[str, Any]) -> Any:
        self._in_flight += 1
        try:
            attempt = 0
            while True:
                attempt += 1
                a = await self._once(payload)
                if not should_retry(self.policy, attempt, a):
                    return result_of(str(self.client.base_url), a)
                await asyncio.sleep(self.policy.delay(attempt, a.response))
        finally:
            self._in_flight -= 1

    async def _once(self, payload: dict[str, Any]) -> Attempt:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Attempt] = loop.create_future()
        self._queue.append((payload, fut))
        if len(self._queue) >= self.max_batch:
            self._start(self._take())
        elif not self._pending:
            self._pending = True
            # Decided once the calls started in the same turn have joined (callbacks
            # and timers, not sleeps: nothing here waits in the caller's task).
            loop.call_soon(self._decide)
        return await fut

    def _decide(self) -> None:
        if self.linger_s > 0 and (self._in_flight > len(self._queue) or len(self._queue) > 1):
            # others are in flight: more may come within the linger
            asyncio.get_running_loop().call_later(self.linger_s, self._flush)
        else:
            self._flush()

    def _flush(self) -> None:
        self._pending = False
        while self._queue:
            self._start(self._take())

    def _take(self) -> list[tuple[dict[str, Any], asyncio.Future[Attempt]]]:
        taken, self._queue = self._queue[:self.max_batch], self._queue[self.max_batch:]
        return taken

    def _start(self, batch: list[tuple[dict[str, Any], asyncio.Future[Attempt]]]) -> None:
        task = asyncio.create_task(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[dict[str, Any], asyncio.Future[Attempt]]]
                    ) -> None:
        items = [p for p, _ in batch]
        reply: httpx.Response | None = None
        error: Exception | None = None
        path, body = request_of(items)
        try:
            reply = await self.client.post(path, json=body)
        except Exception as exc:  # a transport error, or anything: never leave one waiting
            error = exc
        for (_, fut), a in zip(batch, attempts_of(items, reply, error), strict=True):
            if not fut.done():
                fut.set_result(a)

