"""Long-polling: ``GET /api/notifications/poll`` and ``GET /api/topics/{topic}/poll``.

``?since=<event id>&wait=<seconds>`` (``wait`` default 25, at most 30). The reply is
``{"events": [{stream, id, event, data}…], "lastEventId"}`` — the same events, ids
and ``reset`` as the streams, because a waiting poll is a
:class:`~tocsin.streams.follow.JsonConnection` in the hub positioned by the same
code (``follow.py``):
- events after ``since`` exist: answered at once (at most one outbox, 256 KiB;
  the next poll continues from ``lastEventId``);
- none yet: held until one arrives, ``wait`` passes, the client leaves or the
  server shuts down, then answered with what arrived (possibly nothing);
- ``since`` absent: from the head as of now;
- ``since`` not continuable (pruned, never issued, another epoch): one ``reset``
  whose id and ``lastEventId`` are the head.
A poll held past its token's expiry is answered at the expiry with
``"expired": true``; the next poll with that token gets 401.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from starlette.types import Receive, Scope, Send

from tocsin.asgi import Headers, send_error, send_json
from tocsin.errors import TocsinError
from tocsin.ids import Position, event_id
from tocsin.streams.follow import Follower, JsonConnection
from tocsin.streams.hub import Hub

DEFAULT_WAIT_S = 25.0
MAX_WAIT_S = 30.0
STORE_WAIT_S = 5.0
"""Longest a poll waits for the database to settle its position (then 503)."""


def parse_wait(raw: str | None) -> float:
    if raw is None or raw == "":
        return DEFAULT_WAIT_S
    try:
        wait = float(raw)
    except ValueError:
        wait = -1.0
    if not 0 <= wait < float("inf"):
        raise TocsinError("invalid_field", "'wait' is a number of seconds (0-30).", "wait")
    return min(wait, MAX_WAIT_S)


class LongPoll:
    """One held poll request (plain ASGI, like the streams)."""

    __slots__ = ("cors", "expires_at", "hub", "max_open", "owner", "since", "stream", "wait")

    def __init__(self, hub: Hub, stream: str, since: Position | None, wait: float,
                 expires_at: float | None, cors: Headers, owner: str,
                 max_open: int | None) -> None:
        self.hub, self.stream, self.since, self.wait = hub, stream, since, wait
        self.expires_at, self.cors, self.owner, self.max_open = expires_at, cors, owner, max_open

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hub = self.hub
        try:
            hub.check_cap(self.owner, self.max_open)  # then registered, no await between
        except TocsinError as err:
            await send_error(send, err, self.cors)
            return
        conn = JsonConnection(self.stream, self.owner, hub.counters)
        hub.register(conn)  # before reading the head: nothing published is missed
        watcher = asyncio.create_task(_watch(receive, conn))
        wait, expired = self.wait, False
        if self.expires_at is not None and self.expires_at - time.time() < wait:
            wait, expired = max(0.0, self.expires_at - time.time()), True
        try:
            follower = Follower(hub, conn)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + wait
            # Settling the position is not cut short by ``wait`` (``wait=0`` still
            # answers with the events after ``since``), only by a database outage.
            settled = await _until(loop.time() + max(wait, STORE_WAIT_S),
                                   follower.position(self.since, hub.known_head(self.stream)))
            if not settled:
                await send_error(send, TocsinError("store_unavailable"), self.cors)
                return
            tried = False
            while not conn.outbox and not conn.closed:
                left = deadline - loop.time()
                if follower.busy and not (tried and left <= 0):
                    tried = True
                    await follower.step()  # a store read (a pause while it is away)
                elif left <= 0:
                    break
                else:
                    await _until(deadline, conn.wait())
            if conn.outbox:
                expired = False
            frames = conn.outbox
            last = event_id(conn.epoch, conn.last_seq)
        finally:
            hub.unregister(conn)
            watcher.cancel()
        if conn.closed and watcher.done():
            return  # the client left: nobody to answer
        body = b'{"events":[%b],"lastEventId":"%b"%b}' % (
            b",".join(frames), last.encode(), b',"expired":true' if expired else b"")
        await send_json(send, 200, body, self.cors)


async def _until(deadline: float, work: Any) -> bool:
    """Run ``work`` until ``deadline``; True if it finished with a true result (or
    ``None``), False if it ran out of time or returned False."""
    try:
        async with asyncio.timeout_at(deadline):
            done = await work
    except TimeoutError:
        return False
    return done is not False


async def _watch(receive: Receive, conn: JsonConnection) -> None:
    with contextlib.suppress(Exception):
        while (await receive())["type"] != "http.disconnect":
            pass
        conn.close()
