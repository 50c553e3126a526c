"""Ids in tests: event ids ``<epoch>-<seq>`` (or a bare seq), compared by their seq;
fresh names for users and topics."""

from __future__ import annotations

import uuid


def uid(prefix: str) -> str:
    """A fresh name starting with ``prefix``, so tests can share a server."""
    return prefix + uuid.uuid4().hex[:8]


def seq_of(event_id: str) -> int:
    """The seq of an event id: the part after the last '-', or the whole id."""
    return int(event_id.rpartition("-")[2])


def with_seq(event_id: str, seq: int) -> str:
    """The id of event ``seq`` in the same stream (and epoch) as ``event_id``."""
    epoch, dash, _ = event_id.rpartition("-")
    return f"{epoch}{dash}{seq}"
