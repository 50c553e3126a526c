"""Live grouping, snooze, publisher update/retract.

Live grouping, snooze and publisher update/retract: a group's count and actors and
a snooze deadline on each notification, and an index to find a user's open group.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tocsin_notifications") as t:
        t.add_column(sa.Column("group_count", sa.Integer))
        t.add_column(sa.Column("group_actors", sa.Text))
        t.add_column(sa.Column("snoozed_until", sa.BigInteger))
    op.create_index("tocsin_notifications_user_group", "tocsin_notifications",
                    ["user_id", "group_key"])


def downgrade() -> None:
    op.drop_index("tocsin_notifications_user_group", "tocsin_notifications")
    with op.batch_alter_table("tocsin_notifications") as t:
        t.drop_column("snoozed_until")
        t.drop_column("group_actors")
        t.drop_column("group_count")
