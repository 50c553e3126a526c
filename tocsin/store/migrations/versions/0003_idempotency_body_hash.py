"""Idempotency keys remember a hash of their request.

Idempotency keys remember a hash of the request they were first used with, so the
same key with a different body is answered ``409 conflict`` instead of the first
result (which silently dropped the new recipients and content).

Keys claimed before this migration have an empty hash and keep replaying as before
until they expire (24 h).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "tocsin_idempotency",
        sa.Column("body_hash", sa.String(64), nullable=False, server_default=""),
    )


def downgrade() -> None:
    with op.batch_alter_table("tocsin_idempotency") as batch:
        batch.drop_column("body_hash")
