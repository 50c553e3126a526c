"""The webhook channel: publishers' named targets and users' own targets
(``tocsin/channels/webhook/tables.py``).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table, key, size in (("tocsin_webhook_targets", "name", 100),
                             ("tocsin_webhook_users", "user_id", 200)):
        op.create_table(
            table,
            sa.Column(key, sa.String(size), primary_key=True),
            sa.Column("url", sa.Text, nullable=False),
            sa.Column("format", sa.String(16), nullable=False),
            sa.Column("secret", sa.String(200)),
            sa.Column("updated_at", sa.BigInteger, nullable=False),
        )


def downgrade() -> None:
    op.drop_table("tocsin_webhook_users")
    op.drop_table("tocsin_webhook_targets")
