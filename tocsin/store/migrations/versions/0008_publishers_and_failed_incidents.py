"""One tenant per deployment; incidents that failed.

Every API key is the same publisher (docs/deploy.md, "Security"): idempotency keys
become deployment-wide, like groups, policies and incidents already were. Records
are moved to the one publisher ``""``; where two keys claimed the same idempotency
key, the newest record is kept (a retry under either key then gets that reply).
Incidents get ``error``: why a step could never run (state ``failed``).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "DELETE FROM tocsin_idempotency WHERE EXISTS (SELECT 1 FROM tocsin_idempotency o "
        "WHERE o.key = tocsin_idempotency.key AND (o.created_at > tocsin_idempotency.created_at"
        " OR (o.created_at = tocsin_idempotency.created_at"
        " AND o.publisher > tocsin_idempotency.publisher)))")
    op.execute("UPDATE tocsin_idempotency SET publisher = ''")
    with op.batch_alter_table("tocsin_incidents") as t:
        t.add_column(sa.Column("error", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("tocsin_incidents") as t:
        t.drop_column("error")
