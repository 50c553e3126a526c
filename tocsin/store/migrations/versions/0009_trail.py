"""The delivery trail (docs/trail.md): what happened to each notification that its
own row does not say, pruned with the events' retention.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tocsin_trail",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("notification_id", sa.String(40)),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("by", sa.String(200)),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("tocsin_trail_notification", "tocsin_trail", ["notification_id"])
    op.create_index("tocsin_trail_at", "tocsin_trail", ["at"])


def downgrade() -> None:
    op.drop_table("tocsin_trail")
