"""Initial schema: streams, events, notifications, idempotency keys.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tocsin_streams",
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("pruned_upto", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_table(
        "tocsin_events",
        sa.Column("stream", sa.String(300), primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("tocsin_events_created", "tocsin_events", ["created_at"])
    op.create_table(
        "tocsin_notifications",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("priority", sa.String(8), nullable=False),
        sa.Column("group_key", sa.String(200)),
        sa.Column("url", sa.String(2048)),
        sa.Column("actor", sa.String(200)),
        sa.Column("source", sa.String(200)),
        sa.Column("data", sa.Text),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger),
        sa.Column("read_at", sa.BigInteger),
    )
    op.create_index("tocsin_notifications_user_seq", "tocsin_notifications",
                    ["user_id", "seq"], unique=True)
    op.create_index("tocsin_notifications_user_unread", "tocsin_notifications",
                    ["user_id", "read_at"])
    op.create_table(
        "tocsin_idempotency",
        sa.Column("publisher", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("result", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("tocsin_idempotency_created", "tocsin_idempotency", ["created_at"])


def downgrade() -> None:
    op.drop_table("tocsin_idempotency")
    op.drop_table("tocsin_notifications")
    op.drop_table("tocsin_events")
    op.drop_table("tocsin_streams")
