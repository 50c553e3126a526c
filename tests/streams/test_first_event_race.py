"""A live-only stream's first connect races the stream's very first event: the store's
bounds are read while the stream has no events (``(0, 0, "")``), and the event is
offered before that read returns. The event must still be delivered (it was lost
until the next event or the hub's sweep: seen as a 5 s timeout in CI)."""

from __future__ import annotations

from typing import Any

from tocsin.events import StreamEvent
from tocsin.streams.connection import Connection
from tocsin.streams.follow import Follower

EVENT = StreamEvent("u:bo", 1, "notification", '{"title":"one"}', "e1")


class RacingStore:
    """Bounds of a stream never written; the first event is offered to the connection
    while that read is in flight, and is in the store by the time it is read."""

    def __init__(self) -> None:
        self.conn: Connection | None = None

    async def stream_bounds(self, stream: str) -> tuple[int, int, str]:
        assert self.conn is not None
        self.conn.offer(EVENT)  # published and fanned out meanwhile
        return 0, 0, ""

    async def events_after(self, stream: str, seq: int, limit: int) -> list[StreamEvent]:
        return [EVENT] if seq < 1 else []


class FakeHub:
    def __init__(self, store: RacingStore) -> None:
        self.store = store
        self.live_writes = None  # nobody records the trail

    def note_head(self, stream: str, head: int, epoch: str) -> None:
        pass


async def test_the_streams_first_event_offered_during_the_bounds_read_is_delivered(
        ) -> None:
    store = RacingStore()
    conn = store.conn = Connection("u:bo")
    follower = Follower(FakeHub(store), conn)  # type: ignore[arg-type]
    assert await follower.position(None, None)
    assert follower.busy, "the event offered during the read must be fetched"
    await follower.step()
    assert conn.take() == EVENT.frame and conn.last_seq == 1 and conn.epoch == "e1"
    assert not follower.busy


async def test_a_reset_after_an_empty_read_keeps_the_event_offered_meanwhile() -> None:
    """A client holding an id of another epoch, reconnecting as the stream's first
    event (new epoch) arrives: ``reset``, then that event, not silence."""
    from tocsin.ids import Position

    store = RacingStore()
    conn = store.conn = Connection("u:bo")
    follower = Follower(FakeHub(store), conn)  # type: ignore[arg-type]
    assert await follower.position(Position("e0", 7), None)
    frames: Any = conn.take()
    assert b"event: reset" in frames
    await follower.step()
    assert conn.take() == EVENT.frame and conn.last_seq == 1
