"""Publishers for an app's backend: :class:`Publisher` (sync) and :class:`AsyncPublisher`
(asyncio), the same methods on both, over httpx, with the retries of ``_http.py``.

:meth:`Publisher.publish` sends an idempotency key (a uuid4 unless you give one) and
reuses it on every retry, so a retried publish is stored once and answered with the
first ids. A topic event, and a publish with ``escalation`` (the server refuses a key
with it), have none, so they are not repeated once they may have arrived.
Concurrent publishes are batched into bulk requests (``_batch.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx

from tocsin.client import _routes as routes
from tocsin.client._batch import AsyncBatcher, SyncBatcher, batchable, check_batching
from tocsin.client._errors import check_credential
from tocsin.client._http import AsyncHTTP, RetryPolicy, SyncHTTP
from tocsin.client._models import (
    Defaults,
    Incident,
    Policy,
    PolicyStep,
    Priority,
    PublishResult,
    Token,
    TopicEvent,
    TopicPage,
    TypePreferences,
    User,
)

T = TypeVar("T")


def _client_args(url: str, api_key: str, timeout: float) -> dict[str, Any]:
    check_credential(api_key, "api_key")
    return {"base_url": url.rstrip("/"), "timeout": timeout,
            "headers": {"Authorization": f"Bearer {api_key}"}}


class Publisher:
    """Everything an app's backend does with its API key: publish, update and retract
    notifications, topic events and their history, subscriber tokens, escalation
    policies and incidents, per-type defaults, users' email addresses, node stats.
    ``retries`` extra attempts when safe (see the module doc) with backoff from
    ``backoff`` seconds doubling up to ``max_backoff``. An empty ``api_key`` raises
    ``ValueError`` here.

    Publishes that overlap in time (from several threads) are sent together as bulk
    requests: one waits up to ``linger_ms`` (0: never) for others in flight to join
    it, at most ``max_batch`` per request; each keeps its own result, idempotency
    key, error and retries (docs/python.md, "Batching")."""

    def __init__(self, url: str, api_key: str, *, timeout: float = 30.0, retries: int = 3,
                 backoff: float = 0.25, max_backoff: float = 8.0,
                 transport: httpx.BaseTransport | None = None, linger_ms: float = 5.0,
                 max_batch: int = 1000) -> None:
        check_batching(linger_ms, max_batch)
        client = httpx.Client(transport=transport, **_client_args(url, api_key, timeout))
        policy = RetryPolicy(retries, backoff, max_backoff)
        self._http = SyncHTTP(client, policy)
        self._batch = SyncBatcher(client, policy, linger_ms, max_batch) if linger_ms else None

    def _do(self, op: routes.Op[T]) -> T:
        return op.read(self._http.run(op.call))

    def publish(
        self, recipients: Sequence[str], title: str, *, type: str = "message",
        body: str = "", priority: Priority = "medium", group_key: str | None = None,
        url: str | None = None, actor: str | None = None, source: str | None = None,
        data: Mapping[str, Any] | None = None, ttl: int | None = None,
        idempotency_key: str | None = None, escalation: str | None = None,
    ) -> PublishResult:
        """Store and deliver a notification to each of ``recipients`` (a list: a bare
        string raises ``TypeError``). With ``escalation`` (a policy name) it opens an
        incident instead: ``recipients`` may be empty, the result has ``incident``."""
        op = routes.publish(
            recipients, title, type=type, body=body, priority=priority,
            group_key=group_key, url=url, actor=actor, source=source, data=data, ttl=ttl,
            idempotency_key=idempotency_key, escalation=escalation)
        if self._batch is not None and batchable(op.call.json):
            return op.read(self._batch.publish(op.call.json))
        return self._do(op)

    def update(self, key: str, *, title: str | None = None, body: str | None = None,
               priority: Priority | None = None, url: str | None = None,
               data: Mapping[str, Any] | None = None) -> dict[str, str]:
        """Edit every recipient's copy of the notification published with idempotency
        key ``key`` (an ``updated`` event each); returns recipient -> id."""
        return self._do(routes.update(key, title=title, body=body, priority=priority,
                                      url=url, data=data))

    def retract(self, key: str) -> dict[str, str]:
        """Take back every copy of the notification published with ``key`` (a
        ``deleted`` event each); returns recipient -> id."""
        return self._do(routes.retract(key))

    def post_event(self, topic: str, title: str, *, type: str = "activity", body: str = "",
                   actor: str | None = None, data: Mapping[str, Any] | None = None
                   ) -> TopicEvent:
        """Append an activity event to ``topic``; returns the stored event."""
        return self._do(routes.post_event(topic, title, type=type, body=body, actor=actor,
                                          data=data))

    def topic_events(self, topic: str, *, limit: int = 50, before: str | None = None,
                     since: str | None = None) -> TopicPage:
        """A page of the topic's history (newest first; oldest first after ``since``)."""
        return self._do(routes.topic_events(topic, limit=limit, before=before, since=since))

    def token(self, user: str, topics: Sequence[str] | None = None, ttl: int = 3600) -> str:
        """A subscriber token (JWT) for ``user`` that may read ``topics`` patterns."""
        return self.token_info(user, topics, ttl).token

    def token_info(self, user: str, topics: Sequence[str] | None = None,
                   ttl: int = 3600) -> Token:
        """Like :meth:`token`, with its expiry."""
        return self._do(routes.token(user, topics, ttl))

    def put_policy(self, name: str, steps: Sequence[PolicyStep], repeat: int = 0) -> Policy:
        """Create or replace escalation policy ``name``."""
        return self._do(routes.put_policy(name, steps, repeat))

    def get_policy(self, name: str) -> Policy:
        return self._do(routes.get_policy(name))

    def delete_policy(self, name: str) -> None:
        self._do(routes.delete_policy(name))

    def incident(self, id: str) -> Incident:
        """An incident and its timeline."""
        return self._do(routes.incident(id))

    def set_defaults(self, types: Mapping[str, TypePreferences]) -> Defaults:
        """Replace the per-type defaults (a user's own preferences override them)."""
        return self._do(routes.set_defaults(types))

    def defaults(self) -> Defaults:
        return self._do(routes.defaults())

    def set_user(self, user: str, *, email: str | None) -> User:
        """Set (``None``: clear) the address the email channel sends ``user``'s mail to."""
        return self._do(routes.set_user(user, email))

    def get_user(self, user: str) -> User:
        return self._do(routes.get_user(user))

    def stats(self) -> dict[str, Any]:
        """This node's stats (``GET /api/stats``)."""
        return self._do(routes.stats())

    def trail(self, id: str) -> dict[str, Any]:
        """What happened to notification ``id`` (docs/trail.md)."""
        return self._do(routes.trail(id))

    def trail_by_key(self, key: str) -> dict[str, Any]:
        """The trails of the notifications the publish with idempotency key ``key``
        created (``{"notifications": [...]}``, docs/trail.md)."""
        return self._do(routes.trail_by_key(key))

    def request(self, method: str, path: str, *, json: Any = None,
                params: Mapping[str, str | int] | None = None,
                repeatable: bool | None = None) -> Any:
        """Any other publisher route, with the same auth, errors and retries (a call
        other than GET is retried after it may have arrived only if ``repeatable``).
        ``path`` is sent as given: quote its parts (``urllib.parse.quote(x, safe="")``)."""
        return self._do(routes.raw(method, path, json, params, repeatable))

    def close(self) -> None:
        self._http.client.close()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class AsyncPublisher:
    """:class:`Publisher` for asyncio: the same methods, awaited."""

    def __init__(self, url: str, api_key: str, *, timeout: float = 30.0, retries: int = 3,
                 backoff: float = 0.25, max_backoff: float = 8.0,
                 transport: httpx.AsyncBaseTransport | None = None, linger_ms: float = 5.0,
                 max_batch: int = 1000) -> None:
        check_batching(linger_ms, max_batch)
        client = httpx.AsyncClient(transport=transport,
                                   **_client_args(url, api_key, timeout))
        policy = RetryPolicy(retries, backoff, max_backoff)
        self._http = AsyncHTTP(client, policy)
        self._batch = AsyncBatcher(client, policy, linger_ms, max_batch) if linger_ms else None

    async def _do(self, op: routes.Op[T]) -> T:
        return op.read(await self._http.run(op.call))

    async def publish(
        self, recipients: Sequence[str], title: str, *, type: str = "message",
        body: str = "", priority: Priority = "medium", group_key: str | None = None,
        url: str | None = None, actor: str | None = None, source: str | None = None,
        data: Mapping[str, Any] | None = None, ttl: int | None = None,
        idempotency_key: str | None = None, escalation: str | None = None,
    ) -> PublishResult:
        """See :meth:`Publisher.publish` (concurrent calls are batched the same way)."""
        op = routes.publish(
            recipients, title, type=type, body=body, priority=priority,
            group_key=group_key, url=url, actor=actor, source=source, data=data, ttl=ttl,
            idempotency_key=idempotency_key, escalation=escalation)
        if self._batch is not None and batchable(op.call.json):
            return op.read(await self._batch.publish(op.call.json))
        return await self._do(op)

    async def update(self, key: str, *, title: str | None = None, body: str | None = None,
                     priority: Priority | None = None, url: str | None = None,
                     data: Mapping[str, Any] | None = None) -> dict[str, str]:
        """See :meth:`Publisher.update`."""
        return await self._do(routes.update(key, title=title, body=body, priority=priority,
                                            url=url, data=data))

    async def retract(self, key: str) -> dict[str, str]:
        """See :meth:`Publisher.retract`."""
        return await self._do(routes.retract(key))

    async def post_event(self, topic: str, title: str, *, type: str = "activity",
                         body: str = "", actor: str | None = None,
                         data: Mapping[str, Any] | None = None) -> TopicEvent:
        """See :meth:`Publisher.post_event`."""
        return await self._do(routes.post_event(topic, title, type=type, body=body,
                                                actor=actor, data=data))

    async def topic_events(self, topic: str, *, limit: int = 50, before: str | None = None,
                           since: str | None = None) -> TopicPage:
        """See :meth:`Publisher.topic_events`."""
        return await self._do(routes.topic_events(topic, limit=limit, before=before,
                                                  since=since))

    async def token(self, user: str, topics: Sequence[str] | None = None,
                    ttl: int = 3600) -> str:
        """See :meth:`Publisher.token`."""
        return (await self.token_info(user, topics, ttl)).token

    async def token_info(self, user: str, topics: Sequence[str] | None = None,
                         ttl: int = 3600) -> Token:
        """See :meth:`Publisher.token_info`."""
        return await self._do(routes.token(user, topics, ttl))

    async def put_policy(self, name: str, steps: Sequence[PolicyStep],
                         repeat: int = 0) -> Policy:
        """See :meth:`Publisher.put_policy`."""
        return await self._do(routes.put_policy(name, steps, repeat))

    async def get_policy(self, name: str) -> Policy:
        return await self._do(routes.get_policy(name))

    async def delete_policy(self, name: str) -> None:
        await self._do(routes.delete_policy(name))

    async def incident(self, id: str) -> Incident:
        return await self._do(routes.incident(id))

    async def set_defaults(self, types: Mapping[str, TypePreferences]) -> Defaults:
        return await self._do(routes.set_defaults(types))

    async def defaults(self) -> Defaults:
        return await self._do(routes.defaults())

    async def set_user(self, user: str, *, email: str | None) -> User:
        return await self._do(routes.set_user(user, email))

    async def get_user(self, user: str) -> User:
        return await self._do(routes.get_user(user))

    async def stats(self) -> dict[str, Any]:
        """See :meth:`Publisher.stats`."""
        return await self._do(routes.stats())

    async def trail(self, id: str) -> dict[str, Any]:
        """See :meth:`Publisher.trail`."""
        return await self._do(routes.trail(id))

    async def trail_by_key(self, key: str) -> dict[str, Any]:
        """See :meth:`Publisher.trail_by_key`."""
        return await self._do(routes.trail_by_key(key))

    async def request(self, method: str, path: str, *, json: Any = None,
                      params: Mapping[str, str | int] | None = None,
                      repeatable: bool | None = None) -> Any:
        """See :meth:`Publisher.request`."""
        return await self._do(routes.raw(method, path, json, params, repeatable))

    async def aclose(self) -> None:
        await self._http.client.aclose()

    async def __aenter__(self) -> AsyncPublisher:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()


__all__ = ["AsyncPublisher", "Publisher"]
