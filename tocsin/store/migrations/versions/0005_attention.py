"""Attention: preferences, quiet periods, silent notifications.

Attention: per-user preferences, publisher defaults per type, quiet-period state,
and the silent flag on stored notifications.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL: the notification may interrupt; else why it arrived silently
    op.add_column("tocsin_notifications", sa.Column("silent_reason", sa.String(16)))
    # one row per user who saved preferences; user_id '' holds the publisher defaults
    op.create_table(
        "tocsin_preferences",
        sa.Column("user_id", sa.String(200), primary_key=True),
        sa.Column("prefs", sa.Text, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    # a quiet period (quiet hours or DND) in which a user got silent notifications:
    # the digest timer deletes it and writes the digest event in one transaction
    op.create_table(
        "tocsin_attention_periods",
        sa.Column("user_id", sa.String(200), primary_key=True),
        sa.Column("until", sa.BigInteger, primary_key=True),
        sa.Column("since", sa.BigInteger, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tocsin_attention_periods")
    op.drop_table("tocsin_preferences")
    op.drop_column("tocsin_notifications", "silent_reason")
