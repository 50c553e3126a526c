"""The SSE endpoint as a raw ASGI response: replay from the store, then live events.

Two tasks per client: the writer (the request's own task) and a watcher that waits
for the client to go away. The first to finish ends the stream. Pings are written
by the hub's single heartbeat loop, not by a timer per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tocsin.asgi import send_error
from tocsin.errors import TocsinError
from tocsin.ids import Position
from tocsin.sse import SSE_HEADERS, chunked, retry_frame
from tocsin.streams.connection import Connection
from tocsin.streams.direct import Drain, direct_writer, drainer, watch_disconnect
from tocsin.streams.follow import REPLAY_BATCH as REPLAY_BATCH  # re-exported
from tocsin.streams.follow import Follower
from tocsin.streams.follow import next_batch as next_batch  # re-exported
from tocsin.streams.hub import Hub
from tocsin.streams.parked import attach, park, unstarted_socket


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
        signals: bool = False,
    ) -> None:
        self.hub = hub
        self.stream = stream
        self.owner = owner
        """The user holding the stream; with ``max_open``, the most streams they may hold
        open on this node (the one over it gets 429 ``too_many_streams``)."""
        self.max_open = max_open
        self.signals = signals
        """The client asked for live-only signals (``presence``; no ``id:``)."""
        self.last_event_id = last_event_id
        self.retry_ms = retry_ms
        self.expires_at = expires_at
        self.extra_headers = extra_headers or []
        self._head_at_connect: tuple[int, str] | None = None
        self.status_code = 200
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # At the head (e.g. admitted after a remote rate limiter's check, which the
        # server's head-time path does not wait for): opened parked from this task.
        sock = unstarted_socket(send)
        if sock is not None and self.open_parked(sock.transport, sock.default_headers):
            sock.release()
            return
        hub = self.hub
        try:
            hub.check_cap(self.owner, self.max_open)  # then registered, no await between
        except TocsinError as err:
            await send_error(send, err, self.extra_headers)
            return
        conn = Connection(self.stream, self.owner, hub.counters)
        # Register before reading the head: nothing published from here on is missed.
        hub.register(conn, signals=self.signals)
        # A live-only client starts at the head as of *now* (known without a database
        # read when the hub can vouch for it): events published while the headers are
        # being sent are still its to receive.
        self._head_at_connect = hub.known_head(self.stream)
        watcher = None
        if not watch_disconnect(send, conn.close):  # uvicorn: no task per stream
            watcher = asyncio.create_task(self._watch(receive, conn))
        parked = False
        try:
            # Headers and retry go out first: the client is "connected" at once, even
            # while the database is away (the position is settled as soon as it is back).
            headers = [*SSE_HEADERS, *self.extra_headers]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": retry_frame(self.retry_ms),
                        "more_body": True})
            conn.direct = direct_writer(send)
            if self.expires_at is not None:
                # The token ends the stream when it expires (an ``expired`` event says
                # why); the client reconnects with a new one.
                hub.expiries.add(conn, self.expires_at)
            parked = await self._pump(conn, send, watcher is None)
        except OSError:
            pass  # the client went away mid-write
        finally:
            if not parked:
                hub.unregister(conn)
                if watcher is not None:
                    watcher.cancel()
        if parked:
            return  # the stream lives on in parked.py; this task ends
        with contextlib.suppress(OSError, RuntimeError):
            if conn.outbox:  # e.g. a reset frame queued behind backpressure
                await send({"type": "http.response.body", "body": conn.take(), "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    def open_parked(self, transport: Any, default_headers: Any) -> bool:
        """Open the stream straight into the parked state (``parked.py``), called by the
        server's protocol as the request head completes: no request task, no ASGI
        cycle, no ``send``. Only when the hub vouches for the stream's head and the
        client's position is of that epoch and not past it (at the head, behind it, or
        live-only), the owner is under the cap and the server is not closing;
        otherwise ``False``, nothing done, and the request takes the ASGI path (which
        reads the store's bounds and answers the errors). Measured (ARCHITECTURE.md,
        "Performance decisions"): the request task, the cycle and two ASGI sends were
        most of a reconnect's CPU in a 10k storm.

        A client behind the head starts fetching from its position, parked: the
        catch-up read is the bounds check. Its first read shows whether the store can
        continue the position (``Connection.fill``: events pruned since, or none where
        the head says there are, mark the connection stale, and the writer then reads
        the bounds and resets it exactly as the ASGI path would have), so a reconnect
        with missed events costs one store read instead of two plus a request task."""
        hub = self.hub
        known = hub.known_head(self.stream)
        last = self.last_event_id
        if known is None or hub.closing:
            return False
        start = known[0]
        if last is not None:
            if last.epoch != known[1] or last.seq > start:
                return False  # another epoch, or news to this node: the store decides
            start = last.seq
        if self.max_open is not None and hub.by_owner.get(self.owner, 0) >= self.max_open:
            return False
        conn = Connection(self.stream, self.owner, hub.counters)
        hub.register(conn, signals=self.signals)  # the head read above, no await since
        conn.start_at(start, known[0], known[1])
        # what uvicorn writes for the same response: its status line and default
        # headers, ours, chunked framing (no content-length), then the retry frame
        head = [b"HTTP/1.1 200 OK\r\n"]
        for name, value in (*default_headers, *SSE_HEADERS, *self.extra_headers):
            head += [name, b": ", value, b"\r\n"]
        head += [b"transfer-encoding: chunked\r\n\r\n", chunked(retry_frame(self.retry_ms))]
        transport.write(b"".join(head))
        if self.expires_at is not None:
            hub.expiries.add(conn, self.expires_at)
        follower = Follower(hub, conn)
        parked = attach(hub, conn, follower, transport)
        if conn.outbox or conn.closed or follower.busy:
            parked.wake()
        return True

    async def _pump(self, conn: Connection, send: Send, parkable: bool) -> bool:
        """Write until the stream ends (``False``) or, idle, is parked (``True``)."""
        follower = Follower(self.hub, conn)
        if not await follower.position(self.last_event_id, self._head_at_connect):
            return False
        drain: Drain | None = drainer(send)
        while not conn.closed:
            if conn.outbox:
                conn.sending = True
                try:
                    await send({"type": "http.response.body", "body": conn.take(),
                                "more_body": True})
                finally:
                    conn.sending = False
            elif follower.busy:
                if conn.fetching and not conn.stale and drain is not None:
                    # What was sent must leave before more is read: a client that does
                    # not read holds one outbox and the socket's buffer, never a replay.
                    await drain(conn.wait)
                    if conn.closed or conn.outbox:
                        continue
                await follower.step()
            elif parkable and park(send, self.hub, conn, follower):
                return True
            else:
                await conn.wait()
        return False

    @staticmethod
    async def _watch(receive: Receive, conn: Connection) -> None:
        while True:
            message: dict[str, Any] = dict(await receive())
            if message["type"] == "http.disconnect":
                conn.close()
                return
