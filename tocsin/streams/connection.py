"""One client's position in one stream, and the bounded queue of frames it is owed.

The hub calls :meth:`Connection.offer` synchronously for every event of the stream
(one dict lookup and a few comparisons per connection: no task, no await). The
connection's writer (``endpoint.py``) drains the outbox, and whenever the live
path cannot guarantee "exactly the next seq" it reads the gap from the store:
- an event arrives out of order or after a lost broker message (seq > next),
- the client is slow and its outbox is full,
- the hub learns a newer head from the store (after a broker outage).
Because the store makes seqs visible in order, one read from ``last_seq`` repairs
every one of these cases. When even the store cannot continue from ``last_seq`` —
its events were pruned, or the stream has another epoch because the database was
replaced — the connection is *stale*: the writer sends ``reset`` and starts over
at the head.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tocsin.events import StreamEvent, chunked
from tocsin.sse import EXPIRED
from tocsin.streams.direct import DirectWrite

MAX_OUTBOX_BYTES = 256 * 1024
"""Per connection: frames queued beyond this are not queued; the client is served from
the store once it drains (live events and catch-up reads alike)."""
URGENT_RESERVE_BYTES = 64 * 1024
"""Headroom above :data:`MAX_OUTBOX_BYTES` that only live ``urgent`` notifications may
use: under pressure the lower priorities are the ones left to the store, so an urgent
event still goes out in the connection's next write (in seq order, behind what is
already queued) instead of after a drain wait and a store read. The most a connection
queues is therefore ``MAX_OUTBOX_BYTES + URGENT_RESERVE_BYTES`` plus one frame."""


class StreamCounters:
    """A node's stream counters (exported by ``metrics.py``): plain ints, bumped on rare
    paths (a catch-up read, an overflow, a reset, a refusal) and once per event and
    stream on the live path (never per connection)."""

    __slots__ = ("catch_up_events", "catch_up_reads", "live_offers", "overflows",
                 "publish_failures", "refused", "resets", "sweeps", "unread_closes",
                 "urgent_reserved")

    def __init__(self) -> None:
        self.live_offers = 0
        """Events offered live to local connections (one addition per event and stream,
        not per connection: the hub adds the stream's connection count)."""
        self.catch_up_reads = 0
        """Store reads made by streams to catch up (replay, gaps, slow clients)."""
        self.catch_up_events = 0
        """Events queued from those reads."""
        self.overflows = 0
        """Live events a connection left to the store because its outbox was full."""
        self.resets = 0
        """``reset`` events sent (position not continuable)."""
        self.refused = 0
        """Streams refused by the per-user cap."""
        self.urgent_reserved = 0
        """Urgent live events queued in the reserve above the outbox bound (each would
        otherwise have left its connection to the store)."""
        self.publish_failures = 0
        """Fan-outs the broker refused (the events were stored, not announced)."""
        self.sweeps = 0
        """Sweeps of every local stream's head from the store."""
        self.unread_closes = 0
        """WebSockets closed because their client let control replies pile up
        (``streams/ws.py: MAX_CONTROL_BYTES``)."""


class Connection:
    json = False
    """Frames are JSON (``StreamEvent.json_frame``: WebSocket, long-poll), not SSE; set
    by the subclasses in ``streams/follow.py``."""

    __slots__ = ("_waiter", "closed", "counters", "direct", "epoch", "expires", "fetching",
                 "first_offered", "highest", "last_seq", "on_wake", "outbox", "outbox_bytes",
                 "owner", "sending", "stale", "stream")

    def __init__(self, stream: str, owner: str = "",
                 counters: StreamCounters | None = None) -> None:
        self.stream = stream
        self.owner = owner
        """The user holding the stream (the hub counts streams per user); "" if none."""
        self.counters = counters if counters is not None else StreamCounters()
        self.last_seq = 0
        """Newest seq queued for (or written to) the client."""
        self.epoch = ""
        """The stream's epoch that ``last_seq`` belongs to ("" before its first event)."""
        self.stale = False
        """The position may not be continuable (another epoch seen, or the store lacks
        what follows it): the writer checks the store's bounds, then resets or not."""
        self.highest = 0
        """Newest seq known to exist in the stream."""
        self.fetching = True
        """While True, live events are not queued: the writer reads from the store."""
        self.first_offered: int | None = None
        """Lowest seq offered while fetching (before the position is settled, it tells
        a live-only client where "now" was when it connected)."""
        self.outbox: list[bytes] = []
        self.outbox_bytes = 0
        self.closed = False
        self.direct: DirectWrite | None = None
        """Writes straight to the socket when allowed (see ``direct.py``)."""
        self.sending = False
        """True while the writer task is inside an ASGI send."""
        self._waiter: asyncio.Future[None] | None = None
        """Set while the writer sleeps; a bare future is lighter than an Event per client."""
        self.on_wake: Callable[[], None] | None = None
        """A parked stream's (``parked.py``): starts its writer when there is work."""
        self.expires: int | None = None
        """The second its token expires, while the hub's ``Expiries`` holds it."""

    def start_at(self, seq: int, head: int, epoch: str) -> None:
        """Position the connection after ``seq``; ``head`` is the store's newest seq."""
        if epoch != self.epoch:
            self.highest = 0
        self.epoch = epoch
        self.stale = False
        self.last_seq = seq
        self.highest = max(self.highest, head)
        self.fetching = self.highest > seq
        if self.fetching:
            self._wakeup()

    def _fits(self, epoch: str) -> bool:
        """An event of ``epoch`` continues this position (adopting the epoch of a stream
        whose first event this is); ``False`` marks the connection stale."""
        if epoch == self.epoch:
            return True
        if self.last_seq == 0 and not self.epoch:
            self.epoch = epoch
            return True
        self.stale = True
        self._wakeup()
        return False

    def confirm(self, head: int, epoch: str) -> bool:
        """The store's bounds say the position is fine after all (``head`` of
        ``epoch``); returns True if the connection still expects events beyond it."""
        self.stale = False
        if not self.epoch:
            self.epoch = epoch
        if head > self.highest:
            self.highest = head
        self.fetching = self.highest > self.last_seq
        return self.highest > head

    def offer(self, event: StreamEvent) -> None:
        if event.epoch != self.epoch and not self._fits(event.epoch):
            return
        seq = event.seq
        if seq <= self.last_seq:
            return  # already delivered (duplicate from the broker, or replayed)
        if seq > self.highest:
            self.highest = seq
        if self.fetching:
            if self.first_offered is None or seq < self.first_offered:
                self.first_offered = seq
            return
        if seq != self.last_seq + 1:
            self.fetching = True  # gap: let the writer read the store
        elif self.outbox_bytes > MAX_OUTBOX_BYTES and not self._reserve(event):
            self.fetching = True  # slow client: the store serves it once it drains
            self.counters.overflows += 1
        else:
            f = event.json_frame if self.json else event.frame
            self.last_seq = seq
            if (self.direct is not None and not self.outbox and not self.sending
                    and self.direct(f if self.json else event.chunk)):
                return  # written: the writer task need not wake
            self.outbox.append(f)
            self.outbox_bytes += len(f)
        self._wakeup()

    def _reserve(self, event: StreamEvent) -> bool:
        """Whether ``event``, arriving over the bound, may use the urgent reserve (rare
        path: only a backed-up connection asks, so the urgency check costs nothing on
        the common one)."""
        if self.outbox_bytes <= MAX_OUTBOX_BYTES + URGENT_RESERVE_BYTES and event.urgent:
            self.counters.urgent_reserved += 1
            return True
        return False

    def nudge(self, head: int, epoch: str) -> None:
        """The store's head is ``head`` of ``epoch``: catch up if that is news."""
        if epoch != self.epoch and not self._fits(epoch):
            return
        if head > self.highest:
            self.highest = head
        if head > self.last_seq and not self.fetching:
            self.fetching = True
            self._wakeup()

    def fill(self, events: list[StreamEvent], complete: bool) -> None:
        """Queue events read from the store. ``complete`` means the read hit the end.

        Queues at most up to the outbox bound (at least one event, so a frame larger
        than the bound still goes): the rest is read again once the client drains.
        Marks the connection stale if the store no longer has the events right after
        ``last_seq`` (pruned by retention, or another epoch).
        """
        if (events and (events[0].seq > self.last_seq + 1 or not self._fits(events[0].epoch))) \
                or (complete and not events and self.highest > self.last_seq):
            self.stale = True
            return
        queued = 0
        for ev in events:
            if self.outbox_bytes >= MAX_OUTBOX_BYTES and self.outbox:
                complete = False  # the bound holds on the catch-up path too
                break
            if ev.seq > self.last_seq:
                f = ev.json_frame if self.json else ev.frame
                self.outbox.append(f)
                self.outbox_bytes += len(f)
                self.last_seq = ev.seq
                queued += 1
        self.counters.catch_up_reads += 1
        self.counters.catch_up_events += queued
        if self.last_seq > self.highest:
            self.highest = self.last_seq
        if complete and self.highest <= self.last_seq:
            self.fetching = False

    def push_raw(self, data: bytes, chunk: bytes | None = None) -> None:
        """Queue a frame that is not an event (ping, reset); ``chunk`` is ``data`` framed
        for a direct write, when the caller has it ready (pings: once per node)."""
        if (self.direct is not None and not self.outbox and not self.sending
                and self.direct(chunk if chunk is not None
                                else data if self.json else chunked(data))):
            return
        self.outbox.append(data)
        self.outbox_bytes += len(data)
        self._wakeup()

    def take(self) -> bytes:
        data = b"".join(self.outbox)
        self.outbox.clear()
        self.outbox_bytes = 0
        return data

    def close(self) -> None:
        self.closed = True
        self._wakeup()

    def expire(self) -> None:
        """The token expired (``expiry.py``): say so (``expired``, no id), then end."""
        self.push_raw(EXPIRED)
        self.close()

    def _wakeup(self) -> None:
        w = self._waiter
        if w is not None:
            if not w.done():
                w.set_result(None)
        elif self.on_wake is not None:
            self.on_wake()

    async def wait(self) -> None:
        """Sleep until there is something to do (frames, a fetch, or closing)."""
        if self.outbox or self.closed:
            return
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            # Only forget our own future: a wait cancelled from outside (the drain
            # race in endpoint.py) finishes a loop turn later, after the writer may
            # already sleep in a new wait — clearing that one would leave the writer
            # asleep forever (seen as SSE readers stalling mid-stream).
            if self._waiter is waiter:
                self._waiter = None


def transport_of(conn: Connection) -> str:
    """``sse``, ``ws`` (a JSON connection woken by its socket's writer) or ``poll``."""
    if not conn.json:
        return "sse"
    return "ws" if getattr(conn, "wake", None) is not None else "poll"
