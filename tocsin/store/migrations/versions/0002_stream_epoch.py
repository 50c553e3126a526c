"""Streams carry an epoch.

Streams carry an epoch: a random tag set when the stream's row is created, part of
every event id (``<epoch>-<seq>``).

Existing streams each get a random epoch of their own, so ids issued before this
migration (bare seqs) are recognised as foreign and those clients get ``reset`` once.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Frozen copies of tables.NEW_EPOCH_SQL (a migration must not change with the app).
_NEW_EPOCH = {
    "sqlite": "lower(hex(randomblob(4)))",
    "postgresql": "substr(md5(random()::text), 1, 8)",
}


def upgrade() -> None:
    # SQLite cannot ADD COLUMN NOT NULL with a non-constant default: add it with ''
    # and fill it in (the expression is evaluated per row).
    op.add_column(
        "tocsin_streams",
        sa.Column("epoch", sa.String(16), nullable=False, server_default=""),
    )
    new_epoch = _NEW_EPOCH[op.get_bind().dialect.name]
    op.execute(f"UPDATE tocsin_streams SET epoch = {new_epoch}")


def downgrade() -> None:
    with op.batch_alter_table("tocsin_streams") as batch:
        batch.drop_column("epoch")
