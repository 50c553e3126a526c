"""The node's fan-out hub: which connections follow which stream, and how events
reach them from this node's publishes, from the broker, and from the store.

- Local publish: events go straight to local connections, then one broker message
  per batch tells the other nodes (never one message per connection).
- Broker message from another node: delivered the same way.
- Broker lost or a publish to it failed: nodes poll the store's stream heads for
  their local streams (one batched query, not one per connection) until the broker
  is back, then sweep once more and ask every node to sweep; connections that are
  behind read the gap from the store. Nothing is lost, only delayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import os
import time
from collections.abc import Callable, Iterable
from typing import Protocol

import orjson

from tocsin.broker.base import Broker, BrokerUnavailable
from tocsin.errors import TocsinError
from tocsin.events import (
    TOPIC_PREFIX,
    StreamEvent,
    chunked,
    decode_timed_batch,
    encode_batch,
    stream_label,
)
from tocsin.ids import now_ms
from tocsin.presence import PREFIX as PRESENCE_PREFIX
from tocsin.presence import Change, Presence
from tocsin.sse import PING, PING_CHUNK, frame
from tocsin.store.base import Store
from tocsin.streams.connection import (
    MAX_OUTBOX_BYTES,
    Connection,
    StreamCounters,
    transport_of,
)
from tocsin.streams.expiry import Expiries

log = logging.getLogger("tocsin.hub")

HEAD_CACHE_MAX = 200_000
BROKER_BATCH = 500  # events per broker message: bounds message size for 10k-recipient sends
HEARTBEAT_SLICE = 200
"""Connections pinged per loop turn. Measured: one turn pinging all of 10k streams
held the loop for tens of ms every heartbeat (a socket write each: >= 25 ms on bare
socketpairs, 0.2-0.4 s by py-spy on the loaded benchmark machine), and publishes
that arrived meanwhile waited that long. A slice of 200 is a few ms."""
SAFETY_SWEEP_FACTOR = 10
"""Even with a healthy broker, sweep every ``degraded_poll_s * SAFETY_SWEEP_FACTOR``:
an event stored by a node that died before announcing it (SIGKILL, or killed while
cut off from the broker) reaches live clients elsewhere within that bound."""
LAG_SAMPLE_EVERY = 16
"""One fan-out in this many has its delivery lag measured (here, and on the nodes that
receive it: its first broker message carries the commit's wall-clock time)."""


class Socket(Protocol):
    """A WebSocket session as the hub knows it (``streams/ws.py``)."""

    def shutdown(self) -> None:
        """Close with 1001: the server is stopping."""


def _ignore_lag(_: float) -> None:
    pass


def signal_frame(stream: str, name: str, data: str, json: bool) -> tuple[bytes, bytes | None]:
    """A live-only signal as a connection of that kind takes it, with its direct-write
    chunk: SSE ``event:``/``data:`` lines without ``id:``, or (``json``: WebSocket) the
    JSON frame ``{stream, event, data}`` without ``id`` (no direct writes there)."""
    if json:
        return b'{"stream":%b,"event":%b,"data":%b}' % (
            orjson.dumps(stream_label(stream)), orjson.dumps(name), data.encode()), None
    sse = frame(name, data)
    return sse, chunked(sse)


class Hub:
    def __init__(
        self,
        store: Store,
        broker: Broker,
        *,
        heartbeat_s: float = 15.0,
        degraded_poll_s: float = 1.0,
        node_id: str | None = None,
        presence_interval_s: float = 10.0,
    ) -> None:
        self.store = store
        self.broker = broker
        self.node_id = node_id or os.urandom(6).hex()
        self._own_batch = encode_batch(self.node_id, [])[:-6]
        """How this node's own batches start (``{"n":"<node>",``): the broker hands them
        back to it, and they are dropped before being decoded."""
        self.heartbeat_s = heartbeat_s
        self.degraded_poll_s = degraded_poll_s
        self.streams: dict[str, set[Connection]] = {}
        self.heads: dict[str, tuple[int, str]] = {}
        """Newest (seq, epoch) seen per stream (from events and sweeps): see ``known_head``."""
        self.connections = 0
        """Open streams, idle WebSocket sockets included (``hold``)."""
        self.by_owner: dict[str, int] = {}
        """Open streams per user (only users holding at least one), idle WebSocket
        sockets included."""
        self.open_sockets: set[Socket] = set()
        """Open WebSocket sockets (each counted in ``connections`` once per subscription,
        once while it has none): ``close_streams`` ends them, parked ones included, which
        the ASGI server no longer knows of."""
        self.idle_sockets = 0
        """Open WebSocket sockets following no stream (``hold``)."""
        self.counters = StreamCounters()
        self.on_lag: Callable[[float], None] = _ignore_lag
        """Called with a sampled delivery lag in seconds (``metrics.Metrics`` sets it)."""
        self._fan_outs = 0
        self.broker_up = False
        self._down_since: float | None = None
        """When the broker went down (``None`` while up; set at start: down until connected)."""
        self._degraded_s = 0.0
        self._missed_publish = False
        self._tasks: list[asyncio.Task[None]] = []
        self._sweep_needed = asyncio.Event()
        self.closing = False
        self.signalled: set[Connection] = set()
        """Connections that asked for live-only signals (``?presence=1``)."""
        self.presence = Presence(broker, self.node_id, self._presence_changed,
                                 interval_s=presence_interval_s)
        """Who holds which stream, cluster-wide (fed by register/unregister below)."""
        self.live_writes: list[tuple[str, str, str, int, bool]] | None = None
        """When the delivery trail records (``tocsin/trail/``): each notification event
        taken for writing by a connection here, as (stream, data, transport, ms, caught
        up from the store rather than live), collected for the trail's background flush
        (which empties it). ``None``: nobody records, nothing is collected."""
        self.expiries = Expiries()
        """Token expiries of SSE streams (``streams/expiry.py``), forgotten below as each
        connection is unregistered, and of WebSocket sessions."""

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        self._down_since = time.monotonic()
        await self.broker.start(self._on_message, self._on_state)
        await self.presence.start()
        self._tasks = [
            asyncio.create_task(self._heartbeat(), name="tocsin-heartbeat"),
            asyncio.create_task(self._catch_up_loop(), name="tocsin-catch-up"),
        ]

    def close_streams(self) -> None:
        """End every stream now and refuse new ones: clients reconnect elsewhere."""
        self.closing = True
        for conns in self.streams.values():
            for c in conns:
                c.close()
        for s in list(self.open_sockets):
            s.shutdown()

    async def stop(self) -> None:
        self.close_streams()
        self.expiries.close()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await self.presence.stop()
        await self.broker.close()

    # -- connections -------------------------------------------------------------------
    def register(self, conn: Connection, signals: bool = False) -> None:
        """``signals``: the client wants live-only signals (``presence``, no ``id:``)."""
        if self.closing:
            conn.close()
        if signals:
            self.signalled.add(conn)
        self.streams.setdefault(conn.stream, set()).add(conn)
        self.connections += 1
        if conn.owner:
            self._own(conn.owner)
            self.presence.joined(conn.stream, conn.owner)

    def unregister(self, conn: Connection) -> None:
        if conn.expires is not None:
            self.expiries.discard(conn)
        conns = self.streams.get(conn.stream)
        if conns is not None and conn in conns:
            conns.discard(conn)
            self.signalled.discard(conn)
            self.connections -= 1
            if not conns:
                del self.streams[conn.stream]
            if conn.owner:
                self._disown(conn.owner)
                self.presence.left(conn.stream, conn.owner)

    def _own(self, owner: str) -> None:
        self.by_owner[owner] = self.by_owner.get(owner, 0) + 1

    def _disown(self, owner: str) -> None:
        left = self.by_owner[owner] - 1
        if left:
            self.by_owner[owner] = left
        else:
            del self.by_owner[owner]

    # -- WebSocket sockets -------------------------------------------------------------
    def socket_opened(self, socket: Socket) -> None:
        self.open_sockets.add(socket)

    def socket_closed(self, socket: Socket) -> None:
        self.open_sockets.discard(socket)

    @property
    def sockets(self) -> int:
        """Open WebSocket sockets."""
        return len(self.open_sockets)

    def hold(self, owner: str) -> None:
        """Count a WebSocket that follows no stream as one open stream of ``owner``
        (``streams/ws.py``): an idle socket costs the server as much as an idle stream,
        so it takes a place under the per-user cap and shows in ``connections``. The
        caller checks the cap first (``check_cap``), with no await in between."""
        self.idle_sockets += 1
        self.connections += 1
        self._own(owner)

    def release(self, owner: str) -> None:
        """Undo one :meth:`hold` (the socket subscribed to a stream, or closed)."""
        self.idle_sockets -= 1
        self.connections -= 1
        self._disown(owner)

    def open_by(self, owner: str) -> int:
        """Streams ``owner`` holds open on this node."""
        return self.by_owner.get(owner, 0)

    def check_cap(self, owner: str, max_open: int | None) -> None:
        """Raise ``too_many_streams`` (counted) if ``owner`` already holds ``max_open``
        streams on this node. The one cap check of every transport: callers register
        the connection with no await in between, so concurrent connects of one user
        cannot all slip under the cap."""
        if max_open is not None and self.by_owner.get(owner, 0) >= max_open:
            self.counters.refused += 1
            raise TocsinError("too_many_streams", f"User {owner!r} already holds "
                              f"{max_open} open streams on this server "
                              "(--max-user-streams); close one first.")

    def largest_holders(self, n: int) -> list[tuple[str, int]]:
        """The ``n`` users holding the most open streams, most first."""
        return heapq.nlargest(n, self.by_owner.items(), key=lambda item: item[1])

    @property
    def degraded_seconds(self) -> float:
        """Seconds spent with the broker down since this hub started (``metrics.py``)."""
        if self._down_since is None:
            return self._degraded_s
        return self._degraded_s + time.monotonic() - self._down_since

    # -- delivery ----------------------------------------------------------------------
    def deliver(self, events: Iterable[StreamEvent]) -> None:
        streams = self.streams
        heads = self.heads
        live = self.live_writes
        now = now_ms() if live is not None else 0
        if len(heads) > HEAD_CACHE_MAX:
            heads.clear()  # cheap bound; it refills from the next events
        for ev in events:
            known = heads.get(ev.stream)
            if known is None or ev.seq > known[0] or ev.epoch != known[1]:
                heads[ev.stream] = (ev.seq, ev.epoch)
            conns = streams.get(ev.stream)
            if conns:
                self.counters.live_offers += len(conns)
                for c in conns:
                    c.offer(ev)
                if live is not None and ev.name == "notification":
                    _note_live(live, ev, conns, now)

    def note_head(self, stream: str, head: int, epoch: str) -> None:
        """Remember a head read from the store (never lowers what events told us,
        unless the epoch changed: then the store's word is the truth)."""
        known = self.heads.get(stream)
        if (known is None or head > known[0] or epoch != known[1]) \
                and len(self.heads) <= HEAD_CACHE_MAX:
            self.heads[stream] = (head, epoch)

    def known_head(self, stream: str) -> tuple[int, str] | None:
        """The stream's head as this node has seen it, when that can be trusted: only
        while the broker is up (so no announcement was missed). Lets a reconnecting
        client that is already at the head start without a database round trip."""
        if not self.broker_up or self._missed_publish:
            return None
        return self.heads.get(stream)

    async def fan_out(self, events: list[StreamEvent]) -> None:
        """Deliver committed events here and announce them to the other nodes."""
        if not events:
            return
        self._fan_outs += 1
        sent_at: float | None = None
        if self._fan_outs % LAG_SAMPLE_EVERY == 0:
            sent_at = time.time()
            self.deliver(events)
            self.on_lag(time.time() - sent_at)
        else:
            self.deliver(events)
        try:
            for i in range(0, len(events), BROKER_BATCH):
                await self.broker.publish(encode_batch(
                    self.node_id, events[i : i + BROKER_BATCH], sent_at if i == 0 else None))
        except BrokerUnavailable:
            # Stored but not announced: other nodes learn of it from the store
            # (they poll while degraded, and we ask them to sweep once we reconnect).
            self.counters.publish_failures += 1
            self._missed_publish = True
            self._sweep_needed.set()

    def _on_message(self, message: bytes) -> None:
        if message.startswith(b'{"sweep"'):
            self._sweep_needed.set()
            return
        if message.startswith(PRESENCE_PREFIX):
            self.presence.on_message(message)
            return
        if message.startswith(self._own_batch):
            return  # our own batch, already delivered here: not decoded for nothing
        try:
            node, events, sent_at = decode_timed_batch(message)
        except ValueError:
            log.warning("ignoring a malformed broker message (%d bytes)", len(message))
            return
        if node != self.node_id:
            self.deliver(events)
            if sent_at is not None:
                self.on_lag(max(0.0, time.time() - sent_at))

    def _on_state(self, up: bool) -> None:
        was = self.broker_up
        self.broker_up = up
        if not up:
            self.heads.clear()  # announcements may be missed from now on
        if up != was:
            # the broker logs the outage and the recovery with their cause; this is
            # what the node does about it
            if up:
                log.info("broker %s is up: sweeping every stream once", self.broker.url)
            else:
                log.info("broker %s is down: polling stream heads every %gs",
                         self.broker.url, self.degraded_poll_s)
            now = time.monotonic()
            if up and self._down_since is not None:
                self._degraded_s += now - self._down_since
                self._down_since = None
            elif not up and self._down_since is None:
                self._down_since = now
            if up:
                self.presence.on_broker_up()
        # Coming back: catch up once. Going down: the catch-up loop starts polling.
        self._sweep_needed.set()

    def signal(self, stream: str, name: str, data: str) -> None:
        """A live-only event (``presence``) to this node's connections on ``stream`` that
        asked for signals:
        not stored, no ``id:`` (clients keep their last id, so resuming is unaffected),
        framed by :func:`signal_frame` once per connection kind (SSE, JSON) per signal,
        only for kinds present. Dropped for a client already 256 KiB behind (it
        refetches the state over HTTP)."""
        conns = self.streams.get(stream)
        if not conns or not self.signalled:
            return
        framed: dict[bool, tuple[bytes, bytes | None]] = {}
        for c in conns:
            if c in self.signalled and c.outbox_bytes <= MAX_OUTBOX_BYTES:
                f = framed.get(c.json)
                if f is None:
                    f = framed[c.json] = signal_frame(stream, name, data, c.json)
                c.push_raw(*f)

    def _presence_changed(self, change: Change) -> None:
        # nobody here asked for presence events (the common case, and every join of a
        # 100k ramp): no JSON is encoded
        if self.signalled and change.stream.startswith(TOPIC_PREFIX):
            self.signal(change.stream, "presence", orjson.dumps(
                {"user": change.user, "state": change.state, "since": change.since}).decode())

    # -- catching up from the store ----------------------------------------------------
    async def sweep(self) -> None:
        """Nudge every local connection with its stream's head in the store."""
        keys = list(self.streams)
        if not keys:
            return
        self.counters.sweeps += 1
        heads = await self.store.heads(keys)
        for key in keys:
            # A stream the store does not have (any more: the database was replaced)
            # is at position 0 of no epoch: connections further on it are reset.
            head, epoch = heads.get(key, (0, ""))
            self.note_head(key, head, epoch)
            for c in self.streams.get(key, ()):
                c.nudge(head, epoch)

    async def _catch_up_loop(self) -> None:
        while True:
            healthy = self.broker_up and not self._missed_publish
            wait = self.degraded_poll_s * (SAFETY_SWEEP_FACTOR if healthy else 1)
            # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel that
            # lands in the turn the event fires, and stop() would hang on this loop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._sweep_needed.wait()
            self._sweep_needed.clear()
            try:
                await self.sweep()
                if self._missed_publish and self.broker_up:
                    await self.broker.publish(orjson.dumps({"sweep": self.node_id}))
                    self._missed_publish = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # store or broker still down: try again next round
                log.debug("catch-up round failed: %r", exc)
                await asyncio.sleep(self.degraded_poll_s)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            everyone = [c for conns in self.streams.values() for c in conns]
            for i in range(0, len(everyone), HEARTBEAT_SLICE):
                if i:
                    await asyncio.sleep(0)  # publishes and events go first
                streams = self.streams
                for c in everyone[i : i + HEARTBEAT_SLICE]:
                    if not c.outbox and c in streams.get(c.stream, ()):
                        c.push_raw(PING, PING_CHUNK)


def _note_live(live: list[tuple[str, str, str, int, bool]], ev: StreamEvent,
               conns: Iterable[Connection], now: int) -> None:
    """Record ``ev`` once if a connection took it for live writing (it is then the
    connection's ``last_seq``; a connection that is catching up reads it from the store)."""
    for c in conns:
        if c.last_seq == ev.seq:
            live.append((ev.stream, ev.data, transport_of(c), now, False))
            return
