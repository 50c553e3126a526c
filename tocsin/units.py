"""Unit parsers: durations (``15s``, ``500ms``, ``7d``) and rates (``10/s:50``).

A leaf: it imports nothing of tocsin, so the settings, the rate limiter and the
broker's URL options read units the same way without importing each other.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = ["OFF", "Rate", "format_duration", "parse_duration", "parse_rate"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(text: str) -> float:
    """``"15"``, ``"15s"``, ``"500ms"``, ``"7d"`` -> seconds."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 15m, 7d)")
    return float(m.group(1)) * _UNIT_S[m.group(2)]


def format_duration(seconds: float) -> str:
    """The inverse of :func:`parse_duration`, exact: ``parse_duration(format_duration(x)) == x``."""
    return f"{seconds!r}s"


OFF = "off"
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h)\s*(?::\s*(\d+)\s*)?$")
_PER = {"s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True, slots=True)
class Rate:
    per_s: float
    """Tokens added per second."""
    burst: int
    """Bucket size: how many requests may arrive at once after a quiet spell."""


def parse_rate(text: str) -> Rate | None:
    """``"10/s:50"`` -> ``Rate(10.0, 50)``; ``"10/s"`` -> burst = max(1, ceil(10));
    ``"off"`` (or empty) -> ``None``. Raises ``ValueError`` with the accepted forms."""
    if text.strip().lower() in ("", OFF):
        return None
    m = _RATE.match(text)
    if not m:
        raise ValueError(f"not a rate: {text!r} (use N/s:burst such as 10/s:50, "
                         "N/m or N/h, or 'off')")
    per_s = float(m.group(1)) / _PER[m.group(2)]
    burst = int(m.group(3)) if m.group(3) is not None else max(1, math.ceil(per_s))
    if per_s <= 0 or burst < 1:
        raise ValueError(f"not a rate: {text!r} (the rate and the burst must be above 0)")
    return Rate(per_s, burst)
