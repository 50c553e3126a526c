"""The connection's queueing rules, in isolation (no sockets)."""

from __future__ import annotations

from tocsin.events import StreamEvent
from tocsin.streams.connection import MAX_OUTBOX_BYTES, Connection

EPOCH = "e1"


def ev(seq: int, size: int = 10, epoch: str = EPOCH) -> StreamEvent:
    return StreamEvent("u:a", seq, "notification", "x" * size, epoch)


def live(at: int = 0, epoch: str = EPOCH) -> Connection:
    c = Connection("u:a")
    c.start_at(at, at, epoch)
    return c


def test_next_seq_is_queued_and_duplicates_dropped() -> None:
    c = live()
    c.offer(ev(1))
    c.offer(ev(1))
    c.offer(ev(2))
    assert c.take() == ev(1).frame + ev(2).frame and c.last_seq == 2 and not c.fetching


def test_gap_switches_to_fetching_and_fill_repairs() -> None:
    c = live()
    c.offer(ev(2))  # 1 is missing: never deliver 2 before it
    assert c.fetching and c.outbox == [] and c.highest == 2
    c.offer(ev(3))
    assert c.outbox == []
    c.fill([ev(1), ev(2)], complete=True)
    assert c.fetching and not c.stale  # 3 is known to exist and was not read yet
    c.fill([ev(3)], complete=True)
    assert not c.fetching and c.last_seq == 3
    assert c.take() == ev(1).frame + ev(2).frame + ev(3).frame
    c.offer(ev(3))
    c.offer(ev(4))
    assert c.take() == ev(4).frame


def test_slow_client_outbox_is_bounded() -> None:
    c = live()
    seq = 0
    while not c.fetching:
        seq += 1
        c.offer(ev(seq, 1000))
    queued = c.outbox_bytes
    for more in range(seq + 1, seq + 1000):
        c.offer(ev(more, 1000))
    assert c.outbox_bytes == queued <= MAX_OUTBOX_BYTES + 2000
    assert c.highest == seq + 999 and c.last_seq == seq - 1  # the rest comes from the store


def test_start_behind_head_fetches_and_nudge_catches_up() -> None:
    c = Connection("u:a")
    c.offer(ev(5))  # arrived before the position is known: only noted
    c.start_at(2, 4, EPOCH)
    assert c.fetching and c.highest == 5
    c2 = live(3)
    c2.nudge(3, EPOCH)
    assert not c2.fetching
    c2.nudge(7, EPOCH)
    assert c2.fetching and c2.highest == 7


def test_pruned_gap_asks_for_reset() -> None:
    c = live(1)
    c.nudge(9, EPOCH)
    c.fill([ev(5), ev(6)], complete=True)  # 2..4 are gone
    assert c.stale and c.outbox == []
    c2 = live(1)
    c2.nudge(9, EPOCH)
    c2.fill([], complete=True)  # everything after 1 is gone
    assert c2.stale


def test_another_epoch_asks_for_reset_on_every_path() -> None:
    """The database was replaced: whatever brings news of the new epoch (a live event,
    a sweep's nudge, a store read) marks the connection stale, even below its seq."""
    c = live(5)
    c.offer(ev(3, epoch="e2"))
    assert c.stale and c.outbox == [] and c.last_seq == 5
    c = live(5)
    c.nudge(2, "e2")
    assert c.stale
    c = live(5)
    c.nudge(9, EPOCH)
    c.fill([ev(6, epoch="e2")], complete=True)
    assert c.stale and c.outbox == []
    c.start_at(9, 9, "e2")  # what the writer does after sending reset
    assert not c.stale and not c.fetching
    c.offer(ev(10, epoch="e2"))
    assert c.take() == ev(10, epoch="e2").frame


def test_a_stream_written_after_connecting_adopts_its_epoch() -> None:
    c = live(0, epoch="")  # the stream had no events yet: position "0"
    c.offer(ev(1, epoch="e7"))
    assert not c.stale and c.epoch == "e7" and c.take() == ev(1, epoch="e7").frame
    c = live(0, epoch="")
    c.nudge(0, "")  # a sweep of a stream the store does not have: nothing to do
    assert not c.stale and not c.fetching


async def test_a_cancelled_wait_never_loses_the_writers_next_wakeup() -> None:
    """The SSE writer waits on the socket and on the connection at once and cancels the
    loser; the cancelled wait finishes a loop turn later, possibly after the writer
    sleeps again. It must not forget the newer wait (writers stalled mid-stream)."""
    import asyncio

    c = live()
    first = asyncio.ensure_future(c.wait())
    await asyncio.sleep(0)
    second = asyncio.ensure_future(c.wait())
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    c.offer(ev(1, size=10))
    await asyncio.wait_for(second, 1)
    assert c.take() == ev(1).frame
