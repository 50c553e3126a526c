"""Stream expiries grouped by the second (``streams/expiry.py``): each stream ends with
``expired`` at its token's expiry, one loop timer per second, and a stream that ends
first is forgotten (its second's timer too, once no stream is left in it)."""

from __future__ import annotations

import asyncio
import time

from tocsin.sse import EXPIRED
from tocsin.streams.connection import Connection
from tocsin.streams.expiry import Expiries


async def test_streams_expiring_in_the_same_second_share_one_timer_and_each_ends() -> None:
    exp = Expiries()
    at = time.time() + 1.0
    conns = [Connection(f"u:{i}") for i in range(50)]
    for c in conns:
        exp.add(c, at)
    later = Connection("u:later")
    exp.add(later, at + 60)
    assert len(exp._timers) == 2 and len(exp) == 51
    await asyncio.sleep(at - time.time() + 1.1)  # past the (whole) second of ``at``
    for c in conns:
        assert c.closed and c.take() == EXPIRED and c.expires is None
    assert not later.closed and len(exp) == 1 and len(exp._timers) == 1
    exp.close()


async def test_a_stream_that_ends_first_is_forgotten_with_its_timer() -> None:
    exp = Expiries()
    a, b = Connection("u:a"), Connection("u:b")
    exp.add(a, time.time() + 0.5)
    exp.add(b, time.time() + 0.5)
    exp.discard(a)
    assert a.expires is None and len(exp) == 1 and len(exp._timers) == 1
    exp.discard(b)
    assert len(exp) == 0 and not exp._timers
    await asyncio.sleep(1.6)
    assert not a.closed and not b.closed
    exp.discard(a)  # twice: nothing


async def test_a_new_expiry_replaces_the_old_one() -> None:
    exp = Expiries()
    c = Connection("u:c")
    exp.add(c, time.time() + 600)
    exp.add(c, time.time() + 0.2)
    assert len(exp) == 1 and len(exp._timers) == 1
    await asyncio.sleep(1.3)
    assert c.closed
    exp.close()
