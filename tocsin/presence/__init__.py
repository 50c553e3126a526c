"""Presence: who is connected to a topic or holds an inbox open, across nodes, and
whether they are active (a visible tab) or idle. Ephemeral; see ``docs/presence.md``."""

from tocsin.presence.table import ABSENT, STATES, Change, State, Table
from tocsin.presence.tracker import EXPIRY_BOUND_FACTOR, PREFIX, Presence, grace_for

__all__ = ["ABSENT", "EXPIRY_BOUND_FACTOR", "PREFIX", "STATES", "Change", "Presence",
           "State", "Table", "grace_for"]
