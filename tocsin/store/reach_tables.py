"""Tables of the reach channels (migration 0007): Web Push subscriptions, the
key-value table holding the VAPID key pair, users' email addresses, and the email
digest queue. The push and email stores (``store/push.py``, ``store/email.py``)
work on them; the publish hook (``store/preferences.py``) reads the first and third
to know who can be reached at all."""

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
