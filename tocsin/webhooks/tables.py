"""Event webhooks' tables (migration 0011): the subscriptions and the last failed
deliveries of each. The deliveries themselves are timers of the kernel's scheduler
(kind ``event-webhook``)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, String, Table, Text

from tocsin.store.tables import metadata

subscriptions = Table(
    "tocsin_event_webhooks",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("url", Text, nullable=False),
    Column("events", Text, nullable=False),  # a JSON list of event types
    Column("secret", String(200), nullable=False),
    Column("paused", Boolean, nullable=False, default=False),
    Column("failures", Integer, nullable=False, default=0),  # consecutive failed attempts
    Column("last_error", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

failures = Table(
    "tocsin_event_webhook_failures",
    metadata,
    Column("id", String(200), primary_key=True),  # the delivery's timer id
    Column("name", String(100), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("type", String(64), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("reason", Text, nullable=False),
)
Index("tocsin_event_webhook_failures_name", failures.c.name, failures.c.at)
