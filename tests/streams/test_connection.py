"""The connection's queueing rules, in isolation (no sockets)."""

from __future__ import annotations

from tocsin.events import StreamEvent
from tocsin.streams.connection import MAX_OUTBOX_BYTES, Connection


def ev(seq: int, size: int = 10) -> StreamEvent:
    return StreamEvent("u:a", seq, "notification", "x" * size)


def live(at: int = 0) -> Connection:
    c = Connection("u:a")
    c.start_at(at, at)
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
    assert c.fill([ev(1), ev(2)], complete=True)
    assert c.fetching  # 3 is known to exist and was not read yet
    assert c.fill([ev(3)], complete=True)
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
    c.start_at(2, 4)
    assert c.fetching and c.highest == 5
    c2 = live(3)
    c2.nudge(3)
    assert not c2.fetching
    c2.nudge(7)
    assert c2.fetching and c2.highest == 7


def test_pruned_gap_asks_for_reset() -> None:
    c = live(1)
    c.nudge(9)
    assert not c.fill([ev(5), ev(6)], complete=True)  # 2..4 are gone
    c2 = live(1)
    c2.nudge(9)
    assert not c2.fill([], complete=True)  # everything after 1 is gone
