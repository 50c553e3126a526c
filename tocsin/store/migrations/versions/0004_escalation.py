"""Durable timers and escalation.

Durable timers (the scheduler's rows) and escalation: policies, incidents and
their timeline (who was notified, through which step, who acknowledged).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tocsin_timers",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("due_at", sa.BigInteger, nullable=False),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_until", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("tocsin_timers_due", "tocsin_timers", ["due_at"])
    op.create_index("tocsin_timers_kind_key", "tocsin_timers", ["kind", "key"])
    op.create_table(
        "tocsin_escalation_policies",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("policy", sa.Text, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "tocsin_incidents",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("policy_name", sa.String(100), nullable=False),
        sa.Column("policy", sa.Text, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("publisher", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("next_at", sa.BigInteger),
        sa.Column("next_step", sa.Integer),
        sa.Column("acked_by", sa.String(200)),
        sa.Column("acked_at", sa.BigInteger),
    )
    op.create_table(
        "tocsin_incident_timeline",
        sa.Column("incident_id", sa.String(32), primary_key=True),
        sa.Column("entry", sa.String(300), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("round", sa.Integer, nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("user_id", sa.String(200)),
        sa.Column("notification_id", sa.String(32)),
        sa.Column("active", sa.Boolean),
    )
    op.create_index("tocsin_incident_timeline_note", "tocsin_incident_timeline",
                    ["notification_id"])


def downgrade() -> None:
    op.drop_table("tocsin_incident_timeline")
    op.drop_table("tocsin_incidents")
    op.drop_table("tocsin_escalation_policies")
    op.drop_table("tocsin_timers")
