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

__all__ = [
    "Bounds",
    "Change",
    "ListQuery",
    "NewNotification",
    "NewTopicEvent",
    "Page",
    "PublishResult",
    "Store",
    "store_from_url",
]


def store_from_url(url: str) -> Store:
    """Build a store for ``url``; each driver is imported only when its scheme is used."""
    scheme = url.partition("://")[0].lower()
    if scheme.startswith("sqlite"):
        from tocsin.store.sqlite import SqliteStore

        if scheme == "sqlite":
            url = "sqlite+aiosqlite" + url[len("sqlite"):]
        return SqliteStore(url)
    if scheme.startswith("postgres"):
        from tocsin.store.postgres import PostgresStore

        return PostgresStore(url)
    raise ValueError(
        f"unknown database URL scheme {scheme!r} "
        "(use sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db)"
    )
