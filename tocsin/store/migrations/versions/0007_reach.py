"""Reach: Web Push subscriptions, VAPID keys, users' email addresses, email digests.

Reach beyond the open tab (docs/reach.md): each device's Web Push subscription, a
small key-value table (the server's VAPID key pair, shared by every node), the
address a publisher set for a user, and the notifications waiting for a user's
email digest.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tocsin_push_subscriptions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("user_id", sa.String(200), nullable=False),
        # a device's endpoint is unique: registering it again (another user signed in
        # on the same browser) moves it, it never pushes to two users
        sa.Column("endpoint", sa.String(2048), nullable=False, unique=True),
        sa.Column("p256dh", sa.String(200), nullable=False),
        sa.Column("auth", sa.String(100), nullable=False),
        sa.Column("user_agent", sa.String(300)),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("last_sent_at", sa.BigInteger),
    )
    op.create_index("tocsin_push_subscriptions_user", "tocsin_push_subscriptions",
                    ["user_id"])
    op.create_table(
        "tocsin_kv",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "tocsin_users",
        sa.Column("user_id", sa.String(200), primary_key=True),
        sa.Column("email", sa.String(320)),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    # unread notifications collected for a user's next digest email (period end)
    op.create_table(
        "tocsin_email_queue",
        sa.Column("user_id", sa.String(200), primary_key=True),
        sa.Column("notification_id", sa.String(40), primary_key=True),
        sa.Column("period_end", sa.BigInteger, nullable=False),
        sa.Column("queued_at", sa.BigInteger, nullable=False),
    )
    op.create_index("tocsin_email_queue_period", "tocsin_email_queue",
                    ["user_id", "period_end"])


def downgrade() -> None:
    op.drop_index("tocsin_email_queue_period", "tocsin_email_queue")
    op.drop_table("tocsin_email_queue")
    op.drop_table("tocsin_users")
    op.drop_table("tocsin_kv")
    op.drop_index("tocsin_push_subscriptions_user", "tocsin_push_subscriptions")
    op.drop_table("tocsin_push_subscriptions")
