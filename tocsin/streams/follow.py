"""Following one stream for one client, whatever carries it: SSE (``endpoint.py``),
WebSocket (``ws.py``) and long-polling (``poll.py``) share this code, so they share
the contract too — the same position rule (``continues``), the same ``reset``, the
same catch-up reads sized by bytes and the same bounded outbox (``connection.py``).

A :class:`Follower` is the writer's side of one :class:`Connection`: ``position``
places it after the client's last event id (or resets it), and ``step`` does the one
thing the connection needs when its outbox is empty — check its bounds when stale,
read the store when fetching. The transport only drains the outbox its own way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import orjson

from tocsin.errors import StoreUnavailable
from tocsin.events import StreamEvent, stream_label
from tocsin.ids import Position, event_id, now_ms
from tocsin.sse import frame
from tocsin.streams.connection import MAX_OUTBOX_BYTES, Connection, StreamCounters, transport_of
from tocsin.streams.hub import Hub

REPLAY_BATCH = 500
"""Most events one catch-up read asks for (small events)."""
REPLAY_FIRST = 16
"""Events the first catch-up read of a connection asks for: before it knows the
stream's event sizes, a read stays near 400 KB even of the largest events (~25 KB)."""
STORE_RETRY_S = 1.0
FRAME_OVERHEAD = 64
"""Bytes a frame adds to its payload (id, event name, field names), roughly."""


def next_batch(events: list[StreamEvent]) -> int:
    """How many events the next read asks for: as many as fill the outbox bound at the
    average size of ``events`` (catch-up reads by bytes, not by count). Sized from the
    payloads, so frames are built only for events actually queued."""
    size = sum(len(ev.data) + FRAME_OVERHEAD for ev in events)
    if not size:
        return REPLAY_BATCH
    return max(1, min(REPLAY_BATCH, MAX_OUTBOX_BYTES * len(events) // size))


def continues(last: Position, pruned: int, head: int, epoch: str) -> bool:
    """Whether the store can continue a client exactly after ``last``: the same epoch
    (the database was not replaced), issued (not past the head), not pruned."""
    return last.fits(epoch) and pruned <= last.seq <= head


def reset_frame(conn: Connection, position: str) -> bytes:
    """The ``reset`` event in the connection's format."""
    data = f'{{"lastEventId":"{position}"}}'
    if conn.json:
        return b'{"stream":%b,"id":"%b","event":"reset","data":%b}' % (
            orjson.dumps(stream_label(conn.stream)), position.encode(), data.encode())
    return frame("reset", data, position)


def reset(conn: Connection, head: int, epoch: str) -> None:
    """Tell the client to refetch its state, and carry on live from the head."""
    conn.counters.resets += 1
    conn.push_raw(reset_frame(conn, event_id(epoch, head)))
    conn.start_at(head, head, epoch)


class JsonConnection(Connection):
    """A connection whose frames are JSON (``StreamEvent.json_frame``), woken through
    ``wake`` when given (one writer serving many connections: a WebSocket). The SSE
    pings of the hub's heartbeat are not for it (WebSocket pings are the protocol's)."""

    json = True
    __slots__ = ("wake",)

    def __init__(self, stream: str, owner: str = "", counters: StreamCounters | None = None,
                 wake: Callable[[], None] | None = None) -> None:
        super().__init__(stream, owner, counters)
        self.wake = wake

    def push_raw(self, data: bytes, chunk: bytes | None = None) -> None:
        if data[:1] == b"{":  # JSON frames only: SSE-only frames (pings …) are not ours
            super().push_raw(data, chunk)

    def _wakeup(self) -> None:
        if self.wake is not None:
            self.wake()
        else:
            super()._wakeup()

    @property
    def label(self) -> str:
        return stream_label(self.stream)


class Follower:
    """The writer's side of one connection (see the module docstring)."""

    __slots__ = ("batch", "conn", "hub", "stream")

    def __init__(self, hub: Hub, conn: Connection) -> None:
        self.hub, self.conn, self.stream = hub, conn, conn.stream
        self.batch = REPLAY_FIRST

    async def bounds(self) -> tuple[int, int, str] | None:
        """The stream's replay bounds, waiting out a database outage (``None``: closed)."""
        while not self.conn.closed:
            try:
                return await self.hub.store.stream_bounds(self.stream)
            except StoreUnavailable:
                await asyncio.sleep(STORE_RETRY_S)
        return None

    async def position(self, last: Position | None,
                       known: tuple[int, str] | None) -> bool:
        """Place the connection after the client's last event id (or reset it);
        ``known`` is the hub's head as of registration, if it could vouch for it.
        ``False`` if the connection closed before that could be settled."""
        conn = self.conn
        if last is None and known is not None:
            conn.start_at(known[0], known[0], known[1])
            return True
        if last is not None and known is not None and (last.seq, last.epoch) == known:
            # Already at the head (the common case in a reconnect storm): no database
            # round trip.
            conn.start_at(last.seq, last.seq, last.epoch)
            return True
        bounds = await self.bounds()
        if bounds is None:
            return False
        pruned, head, epoch = bounds
        self.hub.note_head(self.stream, head, epoch)
        if not epoch and conn.epoch:
            # The read saw a stream never written, and its first event was offered
            # before the read returned (the connection adopted that event's epoch):
            # that is the stream's epoch now. Positioning with "" would forget the
            # event (``highest`` is per epoch) until the next one or the sweep.
            epoch = conn.epoch
        if last is None:
            # Live only (history comes over HTTP): from the head as of registration,
            # which is before the first event offered since, if any arrived meanwhile.
            start = head if conn.first_offered is None else min(head, conn.first_offered - 1)
            conn.start_at(start, head, epoch)
        elif not continues(last, pruned, head, epoch):
            # Another epoch (the database was replaced), never issued, or older than
            # the retention: the client must refetch state.
            reset(conn, head, epoch)
        else:
            conn.start_at(last.seq, head, epoch)
        return True

    @property
    def busy(self) -> bool:
        """Whether :meth:`step` has work (the outbox is empty and the connection is
        stale or behind)."""
        conn = self.conn
        return not conn.closed and (conn.stale or conn.fetching)

    async def step(self) -> None:
        """One step towards an up-to-date outbox: check the bounds when stale, else read
        the store once when fetching. The caller has drained the outbox (and waited
        for its socket to drain) before calling."""
        conn = self.conn
        if conn.stale:
            # Something suggested the position cannot be continued (another epoch
            # seen, a gap at the start of a read). Only the store's bounds, read
            # now, decide: news can be older than what the connection already has
            # (a sweep's snapshot taken before the stream's first event, say), and
            # a false alarm must not reset a healthy client.
            bounds = await self.bounds()
            if bounds is None:
                return
            pruned, head, epoch = bounds
            self.hub.note_head(self.stream, head, epoch)
            if not continues(Position(conn.epoch, conn.last_seq), pruned, head, epoch):
                reset(conn, head, epoch)
            elif conn.confirm(head, epoch):
                # The connection knows of events the store did not show yet: give
                # the store a moment rather than spin on reads.
                await asyncio.sleep(STORE_RETRY_S / 20)
        elif conn.fetching:
            batch = self.batch
            try:
                events = await self.hub.store.events_after(self.stream, conn.last_seq, batch)
            except StoreUnavailable:
                # Keep the stream open; delivery resumes when the database returns.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(conn.wait(), STORE_RETRY_S)
                return
            conn.fill(events, complete=len(events) < batch)
            if events and self.hub.live_writes is not None:
                note_caught_up(self.hub.live_writes, events, conn)
            if events:
                self.batch = next_batch(events)


def note_caught_up(writes: list[tuple[str, str, str, int, bool]], events: list[StreamEvent],
                   conn: Connection) -> None:
    """For the delivery trail (``Hub.live_writes``): the notification events this read
    queued, written from the store rather than live."""
    now = now_ms()
    transport = transport_of(conn)
    writes.extend((ev.stream, ev.data, transport, now, True) for ev in events
                  if ev.name == "notification" and ev.seq <= conn.last_seq)
