"""Presence across nodes: who holds a stream open, and whether they are active.

Fed by the hub (``joined``/``left`` as it registers and unregisters connections) and
by the users' own reports (``PUT /api/presence``). Never touches the publish or
fan-out paths; ephemeral (nothing is stored in the database).

Broker traffic, all JSON messages starting ``{"pr":`` (the hub routes them here):

- ``d`` delta: this node's entries that appeared or went away and states reported
  here, batched per ``FLUSH_DELAY_S`` — one message per batch of *real* changes
  (a connection joining a stream its user already holds on this node sends nothing;
  a leave waits ``grace`` so a reload does not flap);
- ``h`` heartbeat: one per node per ``interval`` (never per connection), carrying how
  many entries the node holds as of its delta ``i`` (deltas and snapshots are
  numbered) so a peer that missed a delta notices and asks again;
- ``q`` snapshot request to one node whose heartbeat count differs from what this
  node knows of it (a lost delta), or to every node (no ``to``) from a node that
  just started, answered by ``f``;
- ``x`` goodbye on a graceful stop (peers drop the node's entries after ``grace``).

A node that dies without a word (SIGKILL) is dropped by every peer once no message
came from it for ``EXPIRY_FACTOR * interval``; the peers check every half interval,
so its entries are gone within ``(EXPIRY_FACTOR + 0.5) * interval`` of its last
heartbeat, i.e. within ``EXPIRY_BOUND_FACTOR * interval`` of its death.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson

from tocsin.broker.base import Broker, BrokerUnavailable
from tocsin.presence.table import ABSENT, STATES, Change, Entry, State, Table

log = logging.getLogger("tocsin.presence")

PREFIX = b'{"pr":'
"""Every presence broker message starts so (the hub tells them from event batches)."""
FLUSH_DELAY_S = 0.05
"""Changes within this window share one broker message (a reconnect storm is a few
messages, not one per connection)."""
EXPIRY_FACTOR = 3
EXPIRY_BOUND_FACTOR = 4
"""A SIGKILLed node's entries are gone from every peer within this many intervals."""
DEFAULT_INTERVAL_S = 10.0
READY_FACTOR = 1.0
"""A starting node trusts its table after this many intervals: it asked every peer
for a snapshot as it started (answered at once), and every live peer heartbeats
within an interval. On a local broker (``memory://``) it trusts it at once."""
MAX_GRACE_S = 5.0
STATE_KEEP_S = 600.0
"""Reported states of users present nowhere are forgotten after this long."""

Emit = Callable[[Change], None]


def now_ms() -> int:
    return int(time.time() * 1000)


def grace_for(interval_s: float) -> float:
    """The leave grace: up to 5 s, never more than the interval."""
    return min(MAX_GRACE_S, interval_s)


class Presence:
    """The node's presence tracker. Also the seam escalation asks ("is user X active
    right now?"): :meth:`active` satisfies ``tocsin.escalation.presence.Presence``."""

    def __init__(self, broker: Broker, node_id: str, emit: Emit, *,
                 interval_s: float = DEFAULT_INTERVAL_S, grace_s: float | None = None) -> None:
        self.broker = broker
        self.node = node_id
        self.emit = emit
        self.interval_s = interval_s
        self.grace_s = grace_for(interval_s) if grace_s is None else grace_s
        self.table = Table()
        self.counts: dict[Entry, int] = {}
        """Open connections per entry on this node."""
        self._leaving: dict[Entry, asyncio.TimerHandle] = {}
        self._announced: set[Entry] = set()
        """This node's entries as its peers know them (what the last delta said)."""
        self._dirty: set[Entry] = set()
        """Entries of this node added or removed since the last flush: a delta looks at
        these only (measured: diffing every entry each 50 ms flush was ~10 % of a
        10k reconnect storm's CPU)."""
        self._states_out: list[tuple[str, State, int]] = []
        self._deadlines: dict[str, float] = {}
        """Peer node -> monotonic time after which its entries are dropped."""
        self._flush_handle: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None
        self._again = False
        self._loop_task: asyncio.Task[None] | None = None
        self._started = 0.0
        self._ready_at: float | None = None
        """When the table can be trusted (monotonic); ``None`` until started."""
        self._send_full = False
        self._sent = 0
        """Number of this node's last delta or snapshot (each carries its ``i``)."""
        self._out = 0
        """The last of them whose publish completed: what ``_announced`` counts."""
        self._seen: dict[str, int | None] = {}
        """Per peer: the ``i`` of its last delta or snapshot applied here."""
        self.messages_sent = 0

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        self._started = time.monotonic()
        # Nothing to wait for when every peer is in this process (memory://): a lone
        # node is complete at once. Otherwise ask every peer for its entries now (one
        # message; each answers with a snapshot at once) rather than waiting for its
        # next heartbeat and asking then (which took up to 1.5 intervals: a starting
        # node's urgent pushes waited for it, 14 s measured).
        self._ready_at = self._started + (
            0.0 if self.broker.local else READY_FACTOR * self.interval_s)
        if not self.broker.local:
            self._spawn(self._publish({"pr": "q", "n": self.node}))
        self._loop_task = asyncio.create_task(self._loop(), name="tocsin-presence")

    async def stop(self) -> None:
        for h in self._leaving.values():
            h.cancel()
        self._leaving.clear()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        for t in (self._loop_task, self._flushing):
            if t is not None:
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await t
        with contextlib.suppress(Exception):
            await self._publish({"pr": "x", "n": self.node})

    @property
    def ready(self) -> bool:
        """Whether the table can be trusted: every live peer has had an interval to
        answer this node's snapshot request or send a heartbeat (at once on a local
        broker)."""
        return self._ready_at is not None and time.monotonic() >= self._ready_at

    def unknown_for(self) -> float:
        """Seconds until the table can be trusted (0 once it can; at most an interval
        after the start)."""
        if self._ready_at is None:
            return READY_FACTOR * self.interval_s
        return max(0.0, self._ready_at - time.monotonic())

    # -- fed by the hub --------------------------------------------------------------
    def joined(self, stream: str, user: str) -> None:
        entry = (stream, user)
        n = self.counts.get(entry, 0)
        self.counts[entry] = n + 1
        if n:
            return
        pending = self._leaving.pop(entry, None)
        if pending is not None:
            pending.cancel()  # back within the grace period: nobody noticed
            return
        self._changed(self.table.add(self.node, entry, now_ms()))
        self._dirty.add(entry)
        self._schedule_flush()

    def left(self, stream: str, user: str) -> None:
        entry = (stream, user)
        n = self.counts.get(entry, 0)
        if n > 1:
            self.counts[entry] = n - 1
            return
        if n == 0:
            return
        del self.counts[entry]
        loop = asyncio.get_running_loop()
        self._leaving[entry] = loop.call_later(self.grace_s, self._release, entry)

    def _release(self, entry: Entry) -> None:
        self._leaving.pop(entry, None)
        if entry in self.counts:
            return
        self._changed(self.table.remove(self.node, entry, now_ms()))
        self._dirty.add(entry)
        self._schedule_flush()

    # -- reported by users -----------------------------------------------------------
    def report(self, user: str, state: State) -> tuple[str, int]:
        """``user``'s browser says it is ``state``; returns ``(state, since)``."""
        since = now_ms()
        for c in self.table.set_state(user, state, since):
            self.emit(c)
        current = self.table.states.get(user, (state, since))
        if current == (state, since):  # news: tell the peers
            self._states_out.append((user, state, since))
            self._schedule_flush()
        return current

    # -- asked by routes and escalation ----------------------------------------------
    def members(self, stream: str) -> list[dict[str, object]]:
        return self.table.members(stream)

    def user(self, user: str) -> tuple[str, int, list[str]]:
        return self.table.user(user)

    def is_active(self, user: str) -> bool:
        """Whether ``user`` is connected somewhere with a visible tab right now."""
        state, _, _ = self.table.user(user)
        return state == "active"

    async def active(self, users: list[str]) -> dict[str, bool | None]:
        """For escalation: each user active (``True``), idle or away (``False``), or
        ``None`` while this node has just started and cannot know yet."""
        if not self.ready:
            return dict.fromkeys(users)
        return {u: self.is_active(u) for u in users}

    # -- broker ----------------------------------------------------------------------
    def on_message(self, message: bytes) -> None:
        try:
            m = orjson.loads(message)
            kind, node = m["pr"], str(m["n"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("ignoring a malformed presence message (%d bytes)", len(message))
            return
        if node == self.node:
            return
        try:
            self._apply(kind, node, m)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("ignoring a malformed presence message: %r", exc)

    def _apply(self, kind: str, node: str, m: dict[str, Any]) -> None:
        now = now_ms()
        table = self.table
        if kind == "x":  # goodbye: its clients reconnect elsewhere within the grace
            self._deadlines[node] = time.monotonic() + self.grace_s
            self._seen.pop(node, None)
            return
        self._deadlines[node] = time.monotonic() + EXPIRY_FACTOR * self.interval_s
        if kind == "d":
            self._seen[node] = m.get("i")
            for s, u, since in m.get("j", ()):
                self._changed(table.add(node, (sys.intern(str(s)), str(u)), int(since)))
            for s, u in m.get("l", ()):
                self._changed(table.remove(node, (str(s), str(u)), now))
            self._take_states(m)
        elif kind == "h":
            # The count covers that node's deltas up to ``i`` (their publish completed
            # before it counted, so they came before this heartbeat). One published
            # meanwhile may come before it or after (the broker client is a pool): when
            # a later one came already, the counts cannot be compared (measured: they
            # differed at almost every heartbeat of a ramp, each a full snapshot).
            seen, upto = self._seen.get(node), m.get("i")
            if (seen is not None and upto is not None and seen < int(upto)) or (
                    (seen is None or upto is None or seen == upto)
                    and int(m["c"]) != table.count(node)):
                # A delta was lost (broker hiccup): ask that node for all of it.
                self._spawn(self._publish({"pr": "q", "n": self.node, "to": node}))
        elif kind == "q":
            if m.get("to") in (None, self.node):
                self._send_full = True
                self._schedule_flush()
        elif kind == "f":
            self._seen[node] = m.get("i")
            # streams interned: a topic's name once, not once per member (memory)
            entries = {(sys.intern(str(s)), str(u)): int(since) for s, u, since in m["e"]}
            for c in table.replace_node(node, entries, now):
                self.emit(c)
            self._take_states(m)

    def _take_states(self, m: dict[str, Any]) -> None:
        for u, state, since in m.get("s", ()):
            if state in STATES:
                for c in self.table.set_state(str(u), state, int(since)):
                    self.emit(c)

    def on_broker_up(self) -> None:
        """The broker (re)connected: messages may have been lost both ways. Tell the
        peers everything this node holds (what it missed of theirs, their heartbeat
        counts reveal within an interval)."""
        if self.table.count(self.node):
            self._send_full = True
            self._schedule_flush()

    def _changed(self, change: Change | None) -> None:
        if change is not None:
            self.emit(change)

    def _schedule_flush(self) -> None:
        if self._flush_handle is not None:
            return
        loop = asyncio.get_running_loop()
        self._flush_handle = loop.call_later(FLUSH_DELAY_S, self._start_flush)

    def _start_flush(self) -> None:
        self._flush_handle = None
        if self._flushing is not None and not self._flushing.done():
            self._again = True
            return
        self._flushing = asyncio.create_task(self._flush(), name="tocsin-presence-flush")

    def _mine(self) -> dict[Entry, int]:
        return dict(self.table.held_by(self.node))

    async def _flush(self) -> None:
        """Send what peers do not know yet: the difference between this node's entries
        and what was last announced (idempotent: a failed send is retried whole)."""
        while True:
            self._again = False
            states = self._states_out
            dirty, self._dirty = self._dirty, set()
            try:
                if self._send_full:
                    self._send_full = False
                    mine = self._mine()
                    states_of = self.table.states
                    st = [[u, *states_of[u]] for u in {u for _, u in mine} if u in states_of]
                    self._sent += 1
                    i = self._sent
                    await self._publish({"pr": "f", "n": self.node, "i": i,
                                         "e": [[s, u, t] for (s, u), t in mine.items()],
                                         "s": st})
                    self._states_out = []
                    self._announced = set(mine)
                    self._out = i
                else:
                    known = self._announced
                    t = self.table
                    now_in = {e: at for e in dirty
                              if (at := t.since(e, self.node)) is not None}
                    joins = [[s, u, at] for (s, u), at in now_in.items() if (s, u) not in known]
                    gone = [e for e in dirty if e not in now_in and e in known]
                    if joins or gone or states:
                        self._states_out = []
                        self._sent += 1
                        i = self._sent
                        await self._publish({"pr": "d", "n": self.node, "i": i, "j": joins,
                                             "l": [[s, u] for s, u in gone],
                                             "s": [list(x) for x in states]})
                        self._out = i
                    known.difference_update(gone)
                    known.update(now_in)
            except BrokerUnavailable:
                self._states_out = states + self._states_out
                self._dirty |= dirty
                return  # sent in full once the broker is back (on_broker_up)
            if not self._again:
                return

    async def _publish(self, obj: dict[str, Any]) -> None:
        await self.broker.publish(orjson.dumps(obj))
        self.messages_sent += 1

    def _spawn(self, coro: Any) -> None:
        async def run() -> None:
            with contextlib.suppress(BrokerUnavailable):
                await coro
        asyncio.get_running_loop().create_task(run())

    async def _loop(self) -> None:
        """Once per half interval: the heartbeat (every interval) and peers' expiry."""
        beat_at = 0.0
        while True:
            await asyncio.sleep(self.interval_s / 2)
            now = time.monotonic()
            if now >= beat_at:
                beat_at = now + self.interval_s - self.interval_s / 4
                with contextlib.suppress(BrokerUnavailable):
                    await self._publish({"pr": "h", "n": self.node, "c": len(self._announced),
                                         "i": self._out})
            for node, deadline in list(self._deadlines.items()):
                if now > deadline:
                    del self._deadlines[node]
                    self._seen.pop(node, None)
                    dropped = self.table.drop_node(node, now_ms())
                    if self.table.count(node) == 0 and dropped:
                        log.info("presence: node %s went silent; %d entries dropped",
                                 node, len(dropped))
                    for c in dropped:
                        self.emit(c)
            self.table.forget_states(now_ms() - int(STATE_KEEP_S * 1000))


__all__ = ["ABSENT", "PREFIX", "Presence", "grace_for"]
