"""Identifiers: notification ids, and the event ids (stream positions) clients hold.

An event id names a position in one stream as ``<epoch>-<seq>``, e.g. ``3f9a02c1-42``.
``seq`` counts the stream's events (1, 2, 3, … with no holes); ``epoch`` is a random
tag the database gives the stream when it first writes to it (as Centrifugo pairs an
offset with an epoch). A database wiped or replaced behind the same address gives
the stream a new epoch, so an id from the old one is recognised as foreign (the
client gets ``reset``) even when its seq is below the new head. Clients treat ids
as opaque strings.

A stream that was never written has no epoch: its position is ``"0"``. Seq 0 means
"before the first event" and fits every epoch.
"""

from __future__ import annotations

import os
import re
import time
from typing import NamedTuple

_POSITION = re.compile(r"(?:([0-9a-z]{1,16})-)?([0-9]{1,18})", re.ASCII)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_id() -> str:
    """48 bits of milliseconds + 64 random bits, as 28 hex digits (sorts by creation time)."""
    return f"{now_ms():012x}{os.urandom(8).hex()}"


class Position(NamedTuple):
    """A parsed event id."""

    epoch: str
    seq: int

    def fits(self, epoch: str) -> bool:
        """True if this position belongs to a stream whose current epoch is ``epoch``."""
        return self.seq == 0 or self.epoch == epoch

    def __str__(self) -> str:
        return event_id(self.epoch, self.seq)


def event_id(epoch: str, seq: int) -> str:
    """The wire form of a position (``"0"`` for the start of a stream never written)."""
    return f"{epoch}-{seq}" if epoch else str(seq)


def parse_position(raw: str) -> Position:
    """Parse an event id or cursor this server issued; ``ValueError`` for anything else.

    A bare decimal (the id format before epochs) parses with an empty epoch, so it
    never fits a written stream (except 0): such clients get ``reset`` once.
    """
    m = _POSITION.fullmatch(raw.strip())
    if m is None:
        raise ValueError(f"not an event id: {raw[:40]!r}")
    return Position(m.group(1) or "", int(m.group(2)))
