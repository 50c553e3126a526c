"""Acknowledge and escalate: policies, incidents, and the steps the scheduler runs."""

from tocsin.escalation.presence import Presence, UnknownPresence
from tocsin.escalation.service import Escalation

__all__ = ["Escalation", "Presence", "UnknownPresence"]
