"""Notification ids: time-ordered, globally unique, made without a database round trip."""

from __future__ import annotations

import os
import time


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_id() -> str:
    """48 bits of milliseconds + 64 random bits, as 28 hex digits (sorts by creation time)."""
    return f"{now_ms():012x}{os.urandom(8).hex()}"
