"""The SSE endpoint as a raw ASGI response: replay from the store, then live events.

Two tasks per client: the writer (the request's own task) and a watcher that waits
for the client to go away. The first to finish ends the stream. Pings are written
by the hub's single heartbeat loop, not by a timer per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tocsin.api.asgi import send_error
from tocsin.errors import StoreUnavailable, TocsinError
from tocsin.events import StreamEvent
from tocsin.ids import Position, event_id
from tocsin.streams.connection import MAX_OUTBOX_BYTES, Connection
from tocsin.streams.direct import Drain, direct_writer, drainer
from tocsin.streams.hub import Hub
from tocsin.streams.sse import SSE_HEADERS, frame, retry_frame

REPLAY_BATCH = 500
"""Most events one catch-up read asks for (small events)."""
REPLAY_FIRST = 16
"""Events the first catch-up read of a connection asks for: before it knows the
stream's event sizes, a read stays near 400 KB even of the largest events (~25 KB)."""
STORE_RETRY_S = 1.0
FRAME_OVERHEAD = 64
"""Bytes an SSE frame adds to its payload (id, event name, field names), roughly."""


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


def reset(conn: Connection, head: int, epoch: str) -> None:
    """Tell the client to refetch its state, and carry on live from the head."""
    conn.counters.resets += 1
    position = event_id(epoch, head)
    conn.push_raw(frame("reset", f'{{"lastEventId":"{position}"}}', position))
    conn.start_at(head, head, epoch)


class EventStream(Response):
    """ASGI response streaming ``stream`` to one client.

    A ``Response`` subclass so FastAPI hands it the connection as-is; none of the
    base class's body handling is used.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        hub: Hub,
        stream: str,
        last_event_id: Position | None,
        retry_ms: int,
        expires_at: float | None = None,
        extra_headers: list[tuple[bytes, bytes]] | None = None,
        owner: str = "",
        max_open: int | None = None,
    ) -> None:
        self.hub = hub
        self.stream = stream
        self.owner = owner
        """The user holding the stream; with ``max_open``, the most streams they may hold
        open on this node (the one over it gets 429 ``too_many_streams``)."""
        self.max_open = max_open
        self.last_event_id = last_event_id
        self.retry_ms = retry_ms
        self.expires_at = expires_at
        self.extra_headers = extra_headers or []
        self._head_at_connect: tuple[int, str] | None = None
        self.status_code = 200
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hub = self.hub
        if self.max_open is not None and hub.open_by(self.owner) >= self.max_open:
            # Checked and registered with no await in between: concurrent connects
            # of one user cannot all slip under the cap.
            hub.counters.refused += 1
            await send_error(send, TocsinError(
                "too_many_streams", f"User {self.owner!r} already holds {self.max_open} "
                "open streams on this server (--max-user-streams); close one first."),
                self.extra_headers)
            return
        conn = Connection(self.stream, self.owner, hub.counters)
        # Register before reading the head: nothing published from here on is missed.
        hub.register(conn)
        # A live-only client starts at the head as of *now* (known without a database
        # read when the hub can vouch for it): events published while the headers are
        # being sent are still its to receive.
        self._head_at_connect = hub.known_head(self.stream)
        watcher = asyncio.create_task(self._watch(receive, conn))
        expiry: asyncio.TimerHandle | None = None
        try:
            # Headers and retry go out first: the client is "connected" at once, even
            # while the database is away (the position is settled as soon as it is back).
            headers = [*SSE_HEADERS, *self.extra_headers]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": retry_frame(self.retry_ms),
                        "more_body": True})
            conn.direct = direct_writer(send)
            if self.expires_at is not None:
                # The token ends the stream when it expires; the client reconnects with a new one.
                delay = max(0.0, self.expires_at - time.time())
                expiry = asyncio.get_running_loop().call_later(delay, conn.close)
            if await self._position(conn):
                await self._pump(conn, send)
        except OSError:
            pass  # the client went away mid-write
        finally:
            hub.unregister(conn)
            watcher.cancel()
            if expiry is not None:
                expiry.cancel()
        with contextlib.suppress(OSError, RuntimeError):
            if conn.outbox:  # e.g. a reset frame queued behind backpressure
                await send({"type": "http.response.body", "body": conn.take(), "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _position(self, conn: Connection) -> bool:
        """Place the connection after the client's last event id (or reset it).
        ``False`` if the stream closed before that could be settled."""
        last = self.last_event_id
        known = self._head_at_connect
        if last is None and known is not None:
            conn.start_at(known[0], known[0], known[1])
            return True
        if last is not None and known is not None and (last.seq, last.epoch) == known:
            # Already at the head (the common case in a reconnect storm): no database
            # round trip.
            conn.start_at(last.seq, last.seq, last.epoch)
            return True
        bounds = await self._bounds(conn)
        if bounds is None:
            return False
        pruned, head, epoch = bounds
        self.hub.note_head(self.stream, head, epoch)
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

    async def _bounds(self, conn: Connection) -> tuple[int, int, str] | None:
        """The stream's replay bounds, waiting out a database outage (``None``: closed)."""
        while not conn.closed:
            try:
                return await self.hub.store.stream_bounds(self.stream)
            except StoreUnavailable:
                await asyncio.sleep(STORE_RETRY_S)
        return None

    async def _pump(self, conn: Connection, send: Send) -> None:
        store = self.hub.store
        drain: Drain | None = drainer(send)
        batch = REPLAY_FIRST
        while not conn.closed:
            if conn.outbox:
                conn.sending = True
                try:
                    await send({"type": "http.response.body", "body": conn.take(),
                                "more_body": True})
                finally:
                    conn.sending = False
            elif conn.stale:
                # Something suggested the position cannot be continued (another epoch
                # seen, a gap at the start of a read). Only the store's bounds, read
                # now, decide: news can be older than what the connection already has
                # (a sweep's snapshot taken before the stream's first event, say), and
                # a false alarm must not reset a healthy client.
                bounds = await self._bounds(conn)
                if bounds is None:
                    continue
                pruned, head, epoch = bounds
                self.hub.note_head(self.stream, head, epoch)
                if not continues(Position(conn.epoch, conn.last_seq), pruned, head, epoch):
                    reset(conn, head, epoch)
                elif conn.confirm(head, epoch):
                    # The connection knows of events the store did not show yet: give
                    # the store a moment rather than spin on reads.
                    await asyncio.sleep(STORE_RETRY_S / 20)
            elif conn.fetching:
                if drain is not None:
                    # What was sent must leave before more is read: a client that does
                    # not read holds one outbox and the socket's buffer, never a replay.
                    await drain(conn.wait)
                    if conn.closed or conn.outbox:
                        continue
                try:
                    events = await store.events_after(self.stream, conn.last_seq, batch)
                except StoreUnavailable:
                    # Keep the stream open; delivery resumes when the database returns.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(conn.wait(), STORE_RETRY_S)
                    continue
                conn.fill(events, complete=len(events) < batch)
                if events:
                    batch = next_batch(events)
                # Not kept alive while the writer waits on a client that does not read.
                events = []
            else:
                await conn.wait()

    @staticmethod
    async def _watch(receive: Receive, conn: Connection) -> None:
        while True:
            message: dict[str, Any] = dict(await receive())
            if message["type"] == "http.disconnect":
                conn.close()
                return
