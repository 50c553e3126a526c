"""What an app's backend does on a user's behalf with that user's subscriber token:
:class:`UserClient` (sync) and :class:`AsyncUserClient` (asyncio), the same methods.

The token is a string, or a function returning a fresh one; the function is asked once
per token, ahead of its expiry, and once more if the server still says 401."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, TypeVar

import httpx

from tocsin.client import _routes as routes
from tocsin.client._errors import AuthenticationError
from tocsin.client._http import AsyncHTTP, RetryPolicy, SyncHTTP
from tocsin.client._models import (
    Ack,
    Digest,
    DigestPeriod,
    Dnd,
    InboxChange,
    Notification,
    NotificationPage,
    Preferences,
    Priority,
    QuietHours,
    SnoozeResult,
    TypePreferences,
)
from tocsin.client._tokens import AsyncTokens, SyncTokenFunction, SyncTokens, TokenFunction

T = TypeVar("T")


def _client_args(url: str, timeout: float) -> dict[str, Any]:
    return {"base_url": url.rstrip("/"), "timeout": timeout}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class UserClient:
    """One user's inbox, read state, snoozes, acknowledgements and preferences, with
    that user's token (or a function returning a fresh one). Retries as
    :class:`~tocsin.client.Publisher` does. An empty token raises ``ValueError``."""

    def __init__(self, url: str, token: str | SyncTokenFunction, *, timeout: float = 30.0,
                 retries: int = 3, backoff: float = 0.25, max_backoff: float = 8.0,
                 refresh_skew: float = 5.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._tokens = SyncTokens(token, refresh_skew)
        client = httpx.Client(transport=transport, **_client_args(url, timeout))
        self._http = SyncHTTP(client, RetryPolicy(retries, backoff, max_backoff))

    def _do(self, op: routes.Op[T]) -> T:
        used = self._tokens.get()
        try:
            return op.read(self._http.run(op.call, _auth(used)))
        except AuthenticationError as err:
            if err.status != 401 or self._tokens.function is None:
                raise
        return op.read(self._http.run(op.call, _auth(self._tokens.get(refused=used))))

    def notifications(self, *, limit: int = 50, before: str | None = None,
                      since: str | None = None, unread: bool = False,
                      type: str | None = None, priority: Priority | None = None,
                      source: str | None = None) -> NotificationPage:
        """A page of the inbox, newest first (``before``: a page's ``nextCursor``);
        oldest first after ``since`` (an event id)."""
        return self._do(routes.notifications(limit=limit, before=before, since=since,
                                             unread=unread, type=type, priority=priority,
                                             source=source))

    def unread_count(self) -> int:
        return self._do(routes.unread_count())

    def mark_read(self, ids: Sequence[str]) -> list[Notification]:
        """Mark each of ``ids`` read (a list: a bare string raises ``TypeError``);
        returns them as they are now."""
        return [self._do(routes.set_read(id, True)) for id in routes.names(ids, "ids")]

    def mark_unread(self, ids: Sequence[str]) -> list[Notification]:
        return [self._do(routes.set_read(id, False)) for id in routes.names(ids, "ids")]

    def read_all(self, *, type: str | None = None, before: str | None = None
                 ) -> InboxChange:
        """Mark every unread notification read (only of ``type``, or before a cursor)."""
        return self._do(routes.read_all(type, before))

    def dismiss(self, id: str) -> InboxChange:
        """Remove a notification from the inbox on every device."""
        return self._do(routes.dismiss(id))

    def snooze(self, id: str, until: datetime | timedelta | int) -> SnoozeResult:
        """Hide it until ``until`` (a datetime, a delay, or ms since the epoch); it
        comes back unread then."""
        return self._do(routes.snooze(id, until))

    def ack(self, id: str) -> Ack:
        """Acknowledge the incident this notification belongs to (not reading it)."""
        return self._do(routes.ack(id))

    def preferences(self) -> Preferences:
        return self._do(routes.preferences())

    def set_preferences(self, *, types: Mapping[str, TypePreferences] | None = None,
                        quiet_hours: QuietHours | None = None, dnd: Dnd | None = None,
                        urgent_bypasses_quiet: bool = True,
                        email_digest: DigestPeriod = "off") -> Preferences:
        """Replace the user's preferences (what is not given takes its default)."""
        return self._do(routes.set_preferences(
            types=types, quiet_hours=quiet_hours, dnd=dnd,
            urgent_bypasses_quiet=urgent_bypasses_quiet, email_digest=email_digest))

    def digest(self) -> Digest | None:
        """The latest digest still in the user's stream, or None."""
        return self._do(routes.digest())

    def close(self) -> None:
        self._http.client.close()

    def __enter__(self) -> UserClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class AsyncUserClient:
    """:class:`UserClient` for asyncio: the same methods, awaited; the token function
    may be plain or async."""

    def __init__(self, url: str, token: str | TokenFunction, *, timeout: float = 30.0,
                 retries: int = 3, backoff: float = 0.25, max_backoff: float = 8.0,
                 refresh_skew: float = 5.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._tokens = AsyncTokens(token, refresh_skew)
        client = httpx.AsyncClient(transport=transport, **_client_args(url, timeout))
        self._http = AsyncHTTP(client, RetryPolicy(retries, backoff, max_backoff))

    async def _do(self, op: routes.Op[T]) -> T:
        used = await self._tokens.get()
        try:
            return op.read(await self._http.run(op.call, _auth(used)))
        except AuthenticationError as err:
            if err.status != 401 or self._tokens.function is None:
                raise
        # Concurrent calls refused the same token: the first to get here asks for a new
        # one, the others use it.
        fresh = await self._tokens.get(refused=used)
        return op.read(await self._http.run(op.call, _auth(fresh)))

    async def notifications(self, *, limit: int = 50, before: str | None = None,
                            since: str | None = None, unread: bool = False,
                            type: str | None = None, priority: Priority | None = None,
                            source: str | None = None) -> NotificationPage:
        """See :meth:`UserClient.notifications`."""
        return await self._do(routes.notifications(
            limit=limit, before=before, since=since, unread=unread, type=type,
            priority=priority, source=source))

    async def unread_count(self) -> int:
        return await self._do(routes.unread_count())

    async def mark_read(self, ids: Sequence[str]) -> list[Notification]:
        return [await self._do(routes.set_read(id, True))
                for id in routes.names(ids, "ids")]

    async def mark_unread(self, ids: Sequence[str]) -> list[Notification]:
        return [await self._do(routes.set_read(id, False))
                for id in routes.names(ids, "ids")]

    async def read_all(self, *, type: str | None = None, before: str | None = None
                       ) -> InboxChange:
        return await self._do(routes.read_all(type, before))

    async def dismiss(self, id: str) -> InboxChange:
        return await self._do(routes.dismiss(id))

    async def snooze(self, id: str, until: datetime | timedelta | int) -> SnoozeResult:
        return await self._do(routes.snooze(id, until))

    async def ack(self, id: str) -> Ack:
        return await self._do(routes.ack(id))

    async def preferences(self) -> Preferences:
        return await self._do(routes.preferences())

    async def set_preferences(self, *, types: Mapping[str, TypePreferences] | None = None,
                              quiet_hours: QuietHours | None = None, dnd: Dnd | None = None,
                              urgent_bypasses_quiet: bool = True,
                              email_digest: DigestPeriod = "off") -> Preferences:
        return await self._do(routes.set_preferences(
            types=types, quiet_hours=quiet_hours, dnd=dnd,
            urgent_bypasses_quiet=urgent_bypasses_quiet, email_digest=email_digest))

    async def digest(self) -> Digest | None:
        return await self._do(routes.digest())

    async def aclose(self) -> None:
        await self._http.client.aclose()

    async def __aenter__(self) -> AsyncUserClient:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()
