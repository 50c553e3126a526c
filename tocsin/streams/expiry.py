"""Token expiry of open SSE streams: one loop timer per second in which some stream's
token expires, not one per stream.

Measured (ARCHITECTURE.md, "Performance decisions"; tracemalloc on a worker holding
15.9k parked streams): a ``call_later`` per stream held ~500 B (the handle, uvloop's
timer and its libuv handle, a copied context, the args tuple) — the largest single
Python cost of an idle stream. Here a stream costs one slot in a set and one int;
tokens minted in the same second (a ramp, a storm) share a timer. JWT ``exp`` is in
whole seconds, so grouping by the second changes no expiry time.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Protocol

from tocsin.streams.connection import Connection


class Expiring(Protocol):
    """What can expire: a stream (:class:`Connection`, ended by :func:`expire`), or a
    WebSocket session (``ws.py``: closed with 4001)."""

    expires: int | None

    def expire(self) -> None: ...


def expire(conn: Connection) -> None:
    """The token expired: say so (``expired``, no id), then end the stream."""
    conn.expire()


class Expiries:
    """The node's stream expiries (owned by the hub, which forgets a connection's
    expiry as it unregisters it: every end of a stream passes there; a WebSocket
    session forgets its own as it ends)."""

    __slots__ = ("_due", "_timers")

    def __init__(self) -> None:
        self._due: dict[int, set[Expiring]] = {}
        self._timers: dict[int, asyncio.TimerHandle] = {}

    def __len__(self) -> int:
        return sum(len(g) for g in self._due.values())

    def add(self, conn: Expiring, at: float) -> None:
        """End ``conn`` with ``expired`` at ``at`` (seconds since the epoch)."""
        self.discard(conn)
        second = math.ceil(at)
        group = self._due.get(second)
        if group is None:
            group = self._due[second] = set()
            self._timers[second] = asyncio.get_running_loop().call_later(
                max(0.0, second - time.time()), self._fire, second)
        group.add(conn)
        conn.expires = second

    def discard(self, conn: Expiring) -> None:
        second = conn.expires
        if second is None:
            return
        conn.expires = None
        group = self._due.get(second)
        if group is not None:
            group.discard(conn)
            if not group:
                del self._due[second]
                self._timers.pop(second).cancel()

    def _fire(self, second: int) -> None:
        self._timers.pop(second, None)
        for conn in self._due.pop(second, ()):
            conn.expires = None
            conn.expire()

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._due.clear()
