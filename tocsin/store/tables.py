"""Table definitions (SQLAlchemy Core). Schema changes go through numbered migrations
in ``migrations/versions``; this module must describe the head revision."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

# One row per stream: its seq counter. Allocating seqs updates this row, which
# serialises writers of one stream until commit (the ordering guarantee). ``epoch``
# is set by the database when it creates the row (``upsert_sql``) and never changes:
# a database wiped or replaced behind the same address gives the stream a new one.
# (The '' default only exists because SQLite cannot add a NOT NULL column without
# a constant default; every insert sets it.)
streams = Table(
    "tocsin_streams",
    metadata,
    Column("key", String(300), primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
    Column("pruned_upto", BigInteger, nullable=False, server_default="0"),
    Column("epoch", String(16), nullable=False, server_default=""),
)

# A fresh random epoch (8 hex digits), evaluated by the database for each new row:
# never a value cached in Python, so a database replaced behind a running server
# still hands out new epochs.
NEW_EPOCH_SQL = {
    "sqlite": "lower(hex(randomblob(4)))",
    "postgresql": "substr(md5(random()::text), 1, 8)",
}

# The replay log: exactly what each client received, by stream and seq.
events = Table(
    "tocsin_events",
    metadata,
    Column("stream", String(300), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("name", String(32), nullable=False),
    Column("data", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
Index("tocsin_events_created", events.c.created_at)

notifications = Table(
    "tocsin_notifications",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", String(200), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("type", String(100), nullable=False),
    Column("title", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("priority", String(8), nullable=False),
    Column("group_key", String(200)),
    Column("url", String(2048)),
    Column("actor", String(200)),
    Column("source", String(200)),
    Column("data", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger),
    Column("read_at", BigInteger),
    Column("silent_reason", String(16)),  # attention (0005): NULL = may interrupt
    # live grouping and snooze (migration 0006, docs/grouping.md)
    Column("group_count", Integer),
    Column("group_actors", Text),  # JSON list, latest first
    Column("snoozed_until", BigInteger),
)
NOTE_COLUMNS = ("id", "user_id", "seq", "type", "title", "body", "priority", "group_key", "url",
                "actor", "source", "data", "created_at", "expires_at", "read_at",
                "silent_reason", "group_count", "group_actors", "snoozed_until")
"""The order of a planned notification row (``plan.plan_rows``): the table's."""
EVENT_COLUMNS = ("stream", "seq", "name", "data", "created_at")
assert tuple(c.name for c in notifications.columns) == NOTE_COLUMNS
assert tuple(c.name for c in events.columns) == EVENT_COLUMNS
Index("tocsin_notifications_user_seq", notifications.c.user_id, notifications.c.seq, unique=True)
Index("tocsin_notifications_user_unread", notifications.c.user_id, notifications.c.read_at)
Index("tocsin_notifications_user_group", notifications.c.user_id, notifications.c.group_key)

TENANT = ""
"""The ``publisher`` of every idempotency record since migration 0008: all API keys
of a deployment are one publisher (rotation, docs/deploy.md "Security"), so a key
claimed through one API key is the same key through another."""

idempotency = Table(
    "tocsin_idempotency",
    metadata,
    Column("publisher", String(64), primary_key=True),  # TENANT
    Column("key", String(200), primary_key=True),
    Column("result", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # sha256 of the canonical request (``idempotency.request_hash``); '' for keys claimed
    # before migration 0003 (they replay without the check until they expire).
    Column("body_hash", String(64), nullable=False, server_default=""),
)
Index("tocsin_idempotency_created", idempotency.c.created_at)


@lru_cache(maxsize=1024)
def upsert_sql(rows: int, dialect: str, paramstyle: str) -> str:
    """The seq allocation for ``rows`` streams, as driver SQL (SQLite and PostgreSQL
    share the syntax; only the placeholders and the random epoch expression differ),
    cached per row count. Parameters: ``key, count`` per row. A new row gets a fresh
    epoch; an existing one keeps its own. Returns ``key, last_seq, epoch`` per row.

    Both SQL paths use it: built with ``insert().values([...])`` its shape, and so
    SQLAlchemy's compiled-cache key, changed with every batch size, and compiling it
    was the largest cost of a PostgreSQL publish in the benchmark's profile.
    """
    epoch = NEW_EPOCH_SQL[dialect]
    if paramstyle.endswith("dollar"):
        values = ", ".join(f"(${2 * i + 1}, ${2 * i + 2}, 0, {epoch})" for i in range(rows))
    else:
        values = ", ".join([f"(?, ?, 0, {epoch})"] * rows)
    t = streams.name
    return (
        f"INSERT INTO {t} (key, last_seq, pruned_upto, epoch) VALUES {values} "
        f"ON CONFLICT (key) DO UPDATE SET last_seq = {t}.last_seq + excluded.last_seq "
        "RETURNING key, last_seq, epoch"
    )


def insert_sql(table: Table) -> str:
    """``INSERT`` of one row of ``table`` with positional (``?``) placeholders in the
    table's column order, for the raw SQLite writer's ``executemany`` of
    ``plan_rows(..., positional=True)``; the column list comes from the definition."""
    names = [c.name for c in table.columns]
    return (f"INSERT INTO {table.name} ({', '.join(names)}) "
            f"VALUES ({', '.join('?' for _ in names)})")
