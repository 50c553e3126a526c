"""Attention: per-recipient preferences, quiet hours / DND, and the decision
whether a notification may interrupt (docs/attention.md)."""
