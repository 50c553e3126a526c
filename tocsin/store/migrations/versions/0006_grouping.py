"""Live grouping, snooze and publisher update/retract.

Revision ID: 0006
Revises: 0005
"""

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Reserved for the grouping/snooze work."""


def downgrade() -> None:
    """Nothing to undo yet."""
