"""One HTTP call with the SDK's retries and errors, for every client (sync and async).

Every call retries with exponential backoff and jitter when that is safe:

- a connection that could not be made (the request never left): always;
- 429 and 503 (the server did nothing; ``Retry-After`` is honoured): always;
- a reply lost after the request was sent, and other 5xx: only for calls that are safe
  to repeat (``_Call.repeatable``).

A transport failure that outlasts the retries is :class:`TocsinConnectionError`; a 4xx/5xx
reply is a :class:`TocsinAPIError` (of the subclass its status calls for).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from tocsin.client._errors import TocsinConnectionError, check

log = logging.getLogger("tocsin.client")

RETRY_STATUSES = frozenset({429, 503})
"""Replies that mean the server did nothing: any call may be repeated."""
UNSURE_STATUSES = frozenset({500, 502, 504})
"""Replies after which the request may or may not have taken effect."""
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Transport errors raised before the request reached the server."""


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    path: str
    json: Any = None
    params: Mapping[str, str | int] | None = None
    repeatable: bool = True
    """True when sending it twice does no harm."""


def part(value: str) -> str:
    """``value`` as one path segment: ``/``, ``#``, ``?`` and ``%`` cannot end the
    segment or the path early (``by-key/ticket-X#2`` must not edit ``ticket-X``);
    ``:`` and ``@`` may stay (RFC 3986 allows them in a segment)."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"a path part must be a non-empty str, not {value!r}")
    return quote(value, safe=":@")


def retry_after(r: httpx.Response, limit: float) -> float | None:
    """``Retry-After`` in seconds (a number; an HTTP date is not used), at most ``limit``."""
    value = r.headers.get("retry-after")
    try:
        return None if value is None else min(limit, max(0.0, float(value)))
    except ValueError:
        return None


class RetryPolicy:
    """When to retry and how long to wait."""

    def __init__(self, retries: int, backoff: float, max_backoff: float) -> None:
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff

    def delay(self, attempt: int, reply: httpx.Response | None) -> float:
        """Seconds before retry number ``attempt`` (1, 2, ...)."""
        if reply is not None:
            hinted = retry_after(reply, max(self.max_backoff, 60.0))
            if hinted is not None:
                return hinted
        cap = min(self.max_backoff, self.backoff * 2.0 ** (attempt - 1))
        return cap * random.uniform(0.5, 1.0)

    def should_retry(self, call: Call, attempt: int, reply: httpx.Response | None,
                     error: Exception | None) -> bool:
        if attempt > self.retries:
            return False
        if reply is not None:
            return reply.status_code in RETRY_STATUSES or (
                call.repeatable and reply.status_code in UNSURE_STATUSES)
        if isinstance(error, NOT_SENT):
            return True
        return call.repeatable and isinstance(error, httpx.TransportError)


def _why(reply: httpx.Response | None, error: Exception | None) -> str:
    return f"HTTP {reply.status_code}" if reply is not None else str(error) or repr(error)


def _outcome(base: str, reply: httpx.Response | None, error: Exception | None) -> Any:
    if error is not None:
        raise TocsinConnectionError(f"cannot reach {base}: {_why(None, error)}") from error
    assert reply is not None
    return check(reply)


class SyncHTTP:
    """An ``httpx.Client`` and the retry loop."""

    def __init__(self, client: httpx.Client, policy: RetryPolicy) -> None:
        self.client = client
        self.policy = policy

    def run(self, call: Call, headers: Mapping[str, str] | None = None) -> Any:
        attempt = 0
        while True:
            attempt += 1
            reply: httpx.Response | None = None
            error: Exception | None = None
            try:
                reply = self.client.request(call.method, call.path, json=call.json,
                                            params=call.params, headers=headers)
            except httpx.TransportError as exc:
                error = exc
            if not self.policy.should_retry(call, attempt, reply, error):
                return _outcome(str(self.client.base_url), reply, error)
            wait = self.policy.delay(attempt, reply)
            log.info("%s %s: retrying in %.1f s: %s", call.method, call.path, wait,
                     _why(reply, error))
            time.sleep(wait)


class AsyncHTTP:
    """An ``httpx.AsyncClient`` and the retry loop."""

    def __init__(self, client: httpx.AsyncClient, policy: RetryPolicy) -> None:
        self.client = client
        self.policy = policy

    async def run(self, call: Call, headers: Mapping[str, str] | None = None) -> Any:
        attempt = 0
        while True:
            attempt += 1
            reply: httpx.Response | None = None
            error: Exception | None = None
            try:
                reply = await self.client.request(call.method, call.path, json=call.json,
                                                  params=call.params, headers=headers)
            except httpx.TransportError as exc:
                error = exc
            if not self.policy.should_retry(call, attempt, reply, error):
                return _outcome(str(self.client.base_url), reply, error)
            wait = self.policy.delay(attempt, reply)
            log.info("%s %s: retrying in %.1f s: %s", call.method, call.path, wait,
                     _why(reply, error))
            await asyncio.sleep(wait)
