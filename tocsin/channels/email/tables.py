"""The email channel's tables (migration 0007): users' email addresses and the
email digest queue. ``store.py`` works on them; the publish hook reads the first
(``EmailChannel.reachable_sql``) to know who has an address."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, String, Table

from tocsin.store.tables import metadata

users = Table(
    "tocsin_users",
    metadata,
    Column("user_id", String(200), primary_key=True),
    Column("email", String(320)),
    Column("updated_at", BigInteger, nullable=False),
)

email_queue = Table(
    "tocsin_email_queue",
    metadata,
    Column("user_id", String(200), primary_key=True),
    Column("notification_id", String(40), primary_key=True),
    Column("period_end", BigInteger, nullable=False),
    Column("queued_at", BigInteger, nullable=False),
)
Index("tocsin_email_queue_period", email_queue.c.user_id, email_queue.c.period_end)
