"""Persistence backends, chosen by URL (``sqlite+aiosqlite://``, ``postgresql+asyncpg://``)."""

from __future__ import annotations

from tocsin.store.base import (
    Bounds,
    Change,
    ListQuery,
    NewNotification,
    NewTopicEvent,
    Page,
    PublishResult,
    Store,
)
from tocsin.store.options import StoreOptions

__all__ = [
    "Bounds",
    "Change",
    "ListQuery",
    "NewNotification",
    "NewTopicEvent",
    "Page",
    "PublishResult",
    "Store",
    "StoreOptions",
    "store_from_url",
]


def store_from_url(url: str, options: StoreOptions | None = None) -> Store:
    """Build a store for ``url``; each driver is imported only when its scheme is used.
    ``options``: the clock and group window (the defaults otherwise)."""
    options = options or StoreOptions()
    scheme = url.partition("://")[0].lower()
    if scheme.startswith("sqlite"):
        from tocsin.store.sqlite import SqliteStore

        if scheme == "sqlite":
            url = "sqlite+aiosqlite" + url[len("sqlite"):]
        return SqliteStore(url, options)
    if scheme.startswith("postgres"):
        from tocsin.store.postgres import PostgresStore

        return PostgresStore(url, options)
    raise ValueError(
        f"unknown database URL scheme {scheme!r} "
        "(use sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db)"
    )
