"""The webhook channel's tables (migration 0010): publishers' named targets and users'
own targets. The publish hook reads the second (``WebhookChannel.reachable_sql``)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, String, Table, Text

from tocsin.store.tables import metadata

targets = Table(
    "tocsin_webhook_targets",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("url", Text, nullable=False),
    Column("format", String(16), nullable=False),
    Column("secret", String(200)),
    Column("updated_at", BigInteger, nullable=False),
)

user_targets = Table(
    "tocsin_webhook_users",
    metadata,
    Column("user_id", String(200), primary_key=True),
    Column("url", Text, nullable=False),
    Column("format", String(16), nullable=False),
    Column("secret", String(200)),
    Column("updated_at", BigInteger, nullable=False),
)
