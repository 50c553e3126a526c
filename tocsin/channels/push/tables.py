"""The push channel's tables (migration 0007): Web Push subscriptions, and the
key-value table holding the VAPID key pair. ``store.py`` works on them; the publish
hook reads the first (``PushChannel.reachable_sql``) to know who has a device."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, String, Table, Text

from tocsin.store.tables import metadata

push_subscriptions = Table(
    "tocsin_push_subscriptions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("user_id", String(200), nullable=False),
    Column("endpoint", String(2048), nullable=False, unique=True),
    Column("p256dh", String(200), nullable=False),
    Column("auth", String(100), nullable=False),
    Column("user_agent", String(300)),
    Column("created_at", BigInteger, nullable=False),
    Column("last_sent_at", BigInteger),
)
Index("tocsin_push_subscriptions_user", push_subscriptions.c.user_id)

kv = Table(
    "tocsin_kv",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)
