"""Attention: per-user preferences, publisher defaults per type, quiet-period state,
and the silent flag on stored notifications.

Revision ID: 0005
Revises: 0004
"""

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Reserved for the attention work (preferences, quiet hours, silent)."""


def downgrade() -> None:
    """Nothing to undo yet."""
