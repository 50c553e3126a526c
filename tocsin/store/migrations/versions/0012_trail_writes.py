"""The delivery trail's first writes (docs/trail.md): one narrow row per notification
written to a stream (live or caught up), keyed by the notification id, instead of a
``tocsin_trail`` row with two indexes each. Pruned by id (ids start with their
creation time). ``stream.*`` rows already in ``tocsin_trail`` stay readable there.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tocsin_trail_writes",
        sa.Column("notification_id", sa.String(40), primary_key=True),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("transport", sa.String(8), nullable=False),
        sa.Column("caught_up", sa.SmallInteger, nullable=False),
        sqlite_with_rowid=False,  # one B-tree on SQLite: the key is the row
    )


def downgrade() -> None:
    op.drop_table("tocsin_trail_writes")
