"""Publishers for an app's backend: :class:`Publisher` (sync) and :class:`AsyncPublisher`
(asyncio), the same methods on both, over httpx.

Every call retries with exponential backoff and jitter when that is safe:

- a connection that could not be made (the request never left): always;
- 429 and 503 (the server did nothing; ``Retry-After`` is honoured): always;
- a reply lost after the request was sent, and other 5xx: only for calls that are safe
  to repeat: reads, token minting, and :meth:`Publisher.publish`, which sends an
  idempotency key (a uuid4 unless you give one) and reuses it on every retry, so the
  server stores the notification once and answers the retry with the first ids.
  A topic event has no idempotency key, so it is not repeated once it may have arrived.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote

import httpx

from tocsin.client._errors import TocsinAPIError, check

Priority = Literal["urgent", "high", "medium", "low"]
RETRY_STATUSES = frozenset({429, 503})
"""Replies that mean the server did nothing: any call may be repeated."""
UNSURE_STATUSES = frozenset({500, 502, 504})
"""Replies after which the request may or may not have taken effect."""
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Transport errors raised before the request reached the server."""


@dataclass(frozen=True, slots=True)
class Token:
    """A subscriber token and when it expires (seconds since the epoch)."""

    token: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class _Call:
    method: str
    path: str
    json: Any = None
    params: Mapping[str, str | int] | None = None
    repeatable: bool = True
    """True when sending it twice does no harm (see the module doc)."""


def _publish_call(
    recipients: list[str], title: str, *, type: str, body: str, priority: Priority | str,
    group_key: str | None, url: str | None, actor: str | None, source: str | None,
    data: Mapping[str, Any] | None, ttl: int | None, idempotency_key: str | None,
) -> _Call:
    payload: dict[str, Any] = {"recipients": list(recipients), "type": type, "title": title,
                               "body": body, "priority": priority,
                               "idempotencyKey": idempotency_key or str(uuid.uuid4())}
    for name, value in (("groupKey", group_key), ("url", url), ("actor", actor),
                        ("source", source), ("data", data), ("ttl", ttl)):
        if value is not None:
            payload[name] = dict(value) if isinstance(value, Mapping) else value
    return _Call("POST", "/api/notifications", payload)


def _topic_path(topic: str) -> str:
    return f"/api/topics/{quote(topic, safe=':@')}/events"


def _post_event_call(topic: str, title: str, *, type: str, body: str, actor: str | None,
                     data: Mapping[str, Any] | None) -> _Call:
    payload: dict[str, Any] = {"type": type, "title": title, "body": body}
    if actor is not None:
        payload["actor"] = actor
    if data is not None:
        payload["data"] = dict(data)
    return _Call("POST", _topic_path(topic), payload, repeatable=False)


def _history_call(topic: str, *, limit: int, before: str | None, since: str | None) -> _Call:
    params: dict[str, str | int] = {"limit": limit}
    if before is not None:
        params["before"] = before
    if since is not None:
        params["since"] = since
    return _Call("GET", _topic_path(topic), params=params)


def _token_call(user: str, topics: list[str] | None, ttl: int) -> _Call:
    body: dict[str, Any] = {"user": user, "ttl": ttl}
    if topics is not None:
        body["topics"] = list(topics)
    return _Call("POST", "/api/tokens", body)


def _token(reply: Any) -> Token:
    return Token(str(reply["token"]), float(reply["expiresAt"]) / 1000)


def retry_after(r: httpx.Response, limit: float) -> float | None:
    """``Retry-After`` in seconds (a number; an HTTP date is not used), at most ``limit``."""
    value = r.headers.get("retry-after")
    try:
        return None if value is None else min(limit, max(0.0, float(value)))
    except ValueError:
        return None


class _Policy:
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

    def should_retry(self, call: _Call, attempt: int, reply: httpx.Response | None,
                     error: Exception | None) -> bool:
        if attempt > self.retries:
            return False
        if reply is not None:
            return reply.status_code in RETRY_STATUSES or (
                call.repeatable and reply.status_code in UNSURE_STATUSES)
        if isinstance(error, NOT_SENT):
            return True
        return call.repeatable and isinstance(error, httpx.TransportError)


def _client_args(url: str, api_key: str, timeout: float) -> dict[str, Any]:
    return {"base_url": url.rstrip("/"), "timeout": timeout,
            "headers": {"Authorization": f"Bearer {api_key}"}}


class Publisher:
    """Publish notifications and topic events, read topic history, mint subscriber
    tokens, read node stats. ``retries`` extra attempts (see the module doc) with
    backoff from ``backoff`` seconds doubling up to ``max_backoff``."""

    def __init__(self, url: str, api_key: str, *, timeout: float = 30.0, retries: int = 3,
                 backoff: float = 0.25, max_backoff: float = 8.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._http = httpx.Client(transport=transport, **_client_args(url, api_key, timeout))
        self._policy = _Policy(retries, backoff, max_backoff)

    def _run(self, call: _Call) -> Any:
        attempt = 0
        while True:
            attempt += 1
            reply: httpx.Response | None = None
            try:
                reply = self._http.request(call.method, call.path, json=call.json,
                                           params=call.params)
                error: Exception | None = None
            except httpx.TransportError as exc:
                error = exc
            if not self._policy.should_retry(call, attempt, reply, error):
                if error is not None:
                    raise error
                assert reply is not None
                return check(reply)
            time.sleep(self._policy.delay(attempt, reply))

    def publish(
        self, recipients: list[str], title: str, *, type: str = "message", body: str = "",
        priority: Priority | str = "medium", group_key: str | None = None,
        url: str | None = None, actor: str | None = None, source: str | None = None,
        data: Mapping[str, Any] | None = None, ttl: int | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, str]:
        """Store and deliver a notification; returns ``{recipient: notification id}``.
        Retried safely: the idempotency key (generated unless given) is reused."""
        call = _publish_call(recipients, title, type=type, body=body, priority=priority,
                             group_key=group_key, url=url, actor=actor, source=source,
                             data=data, ttl=ttl, idempotency_key=idempotency_key)
        ids: dict[str, str] = self._run(call)["ids"]
        return ids

    def post_event(self, topic: str, title: str, *, type: str = "activity", body: str = "",
                   actor: str | None = None, data: Mapping[str, Any] | None = None
                   ) -> dict[str, Any]:
        """Append an activity event to ``topic``; returns the stored event."""
        event: dict[str, Any] = self._run(_post_event_call(
            topic, title, type=type, body=body, actor=actor, data=data))
        return event

    def topic_events(self, topic: str, *, limit: int = 50, before: str | None = None,
                     since: str | None = None) -> dict[str, Any]:
        """A page of the topic's history: ``{items, nextCursor, lastEventId}`` (newest
        first; oldest first after ``since``)."""
        page: dict[str, Any] = self._run(_history_call(topic, limit=limit, before=before,
                                                       since=since))
        return page

    def token(self, user: str, topics: list[str] | None = None, ttl: int = 3600) -> str:
        """A subscriber token (JWT) for ``user`` that may read ``topics`` patterns."""
        return self.token_info(user, topics, ttl).token

    def token_info(self, user: str, topics: list[str] | None = None,
                   ttl: int = 3600) -> Token:
        """Like :meth:`token`, with its expiry."""
        return _token(self._run(_token_call(user, topics, ttl)))

    def stats(self) -> dict[str, Any]:
        """This node's stats (``GET /api/stats``)."""
        stats: dict[str, Any] = self._run(_Call("GET", "/api/stats"))
        return stats

    def request(self, method: str, path: str, *, json: Any = None,
                params: Mapping[str, str | int] | None = None,
                repeatable: bool | None = None) -> Any:
        """Any other publisher route, with the same auth, errors and retries (a call
        other than GET is retried after it may have arrived only if ``repeatable``)."""
        again = method.upper() == "GET" if repeatable is None else repeatable
        return self._run(_Call(method.upper(), path, json, params, again))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class AsyncPublisher:
    """:class:`Publisher` for asyncio: the same methods, awaited."""

    def __init__(self, url: str, api_key: str, *, timeout: float = 30.0, retries: int = 3,
                 backoff: float = 0.25, max_backoff: float = 8.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._http = httpx.AsyncClient(transport=transport,
                                       **_client_args(url, api_key, timeout))
        self._policy = _Policy(retries, backoff, max_backoff)

    async def _run(self, call: _Call) -> Any:
        attempt = 0
        while True:
            attempt += 1
            reply: httpx.Response | None = None
            try:
                reply = await self._http.request(call.method, call.path, json=call.json,
                                                 params=call.params)
                error: Exception | None = None
            except httpx.TransportError as exc:
                error = exc
            if not self._policy.should_retry(call, attempt, reply, error):
                if error is not None:
                    raise error
                assert reply is not None
                return check(reply)
            await asyncio.sleep(self._policy.delay(attempt, reply))

    async def publish(
        self, recipients: list[str], title: str, *, type: str = "message", body: str = "",
        priority: Priority | str = "medium", group_key: str | None = None,
        url: str | None = None, actor: str | None = None, source: str | None = None,
        data: Mapping[str, Any] | None = None, ttl: int | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, str]:
        """See :meth:`Publisher.publish`."""
        call = _publish_call(recipients, title, type=type, body=body, priority=priority,
                             group_key=group_key, url=url, actor=actor, source=source,
                             data=data, ttl=ttl, idempotency_key=idempotency_key)
        ids: dict[str, str] = (await self._run(call))["ids"]
        return ids

    async def post_event(self, topic: str, title: str, *, type: str = "activity",
                         body: str = "", actor: str | None = None,
                         data: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """See :meth:`Publisher.post_event`."""
        event: dict[str, Any] = await self._run(_post_event_call(
            topic, title, type=type, body=body, actor=actor, data=data))
        return event

    async def topic_events(self, topic: str, *, limit: int = 50, before: str | None = None,
                           since: str | None = None) -> dict[str, Any]:
        """See :meth:`Publisher.topic_events`."""
        page: dict[str, Any] = await self._run(_history_call(topic, limit=limit,
                                                             before=before, since=since))
        return page

    async def token(self, user: str, topics: list[str] | None = None,
                    ttl: int = 3600) -> str:
        """See :meth:`Publisher.token`."""
        return (await self.token_info(user, topics, ttl)).token

    async def token_info(self, user: str, topics: list[str] | None = None,
                         ttl: int = 3600) -> Token:
        """See :meth:`Publisher.token_info`."""
        return _token(await self._run(_token_call(user, topics, ttl)))

    async def stats(self) -> dict[str, Any]:
        """See :meth:`Publisher.stats`."""
        stats: dict[str, Any] = await self._run(_Call("GET", "/api/stats"))
        return stats

    async def request(self, method: str, path: str, *, json: Any = None,
                      params: Mapping[str, str | int] | None = None,
                      repeatable: bool | None = None) -> Any:
        """See :meth:`Publisher.request`."""
        again = method.upper() == "GET" if repeatable is None else repeatable
        return await self._run(_Call(method.upper(), path, json, params, again))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncPublisher:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()


__all__ = ["AsyncPublisher", "Publisher", "TocsinAPIError", "Token"]
