"""The heartbeat's count is compared only with the same deltas applied: a delta whose
publish overlapped the heartbeat may come first (the broker client is a pool), and a
full snapshot each time would cost a ramp dearly; a delta that never came is asked for."""

from __future__ import annotations

import asyncio

import orjson

from tocsin.presence import Presence


class Sent:
    local = True  # a lone node: no start-up snapshot request among the messages

    def __init__(self) -> None:
        self.messages: list[dict[str, object]] = []

    async def publish(self, message: bytes) -> None:
        self.messages.append(orjson.loads(message))


def msg(**kw: object) -> bytes:
    return orjson.dumps({"n": "a", **kw})


async def asked(sent: Sent) -> int:
    await asyncio.sleep(0.01)  # the request is published from a task
    return sum(m["pr"] == "q" for m in sent.messages)


async def test_heartbeats_compare_counts_of_the_same_deltas() -> None:
    sent = Sent()
    p = Presence(sent, "b", lambda c: None)  # type: ignore[arg-type]
    p.on_message(msg(pr="d", i=1, j=[["t:r", "x", 1]], l=[], s=[]))
    p.on_message(msg(pr="d", i=2, j=[["t:r", "y", 2]], l=[], s=[]))
    p.on_message(msg(pr="h", c=1, i=1))  # counted before delta 2 was out: no question
    p.on_message(msg(pr="h", c=2, i=2))
    assert await asked(sent) == 0
    p.on_message(msg(pr="h", c=2, i=3))  # delta 3 was out before it and never came
    assert await asked(sent) == 1
    p.on_message(msg(pr="f", i=4, e=[["t:r", "x", 1]], s=[]))
    p.on_message(msg(pr="h", c=1, i=4))
    assert await asked(sent) == 1
    p.on_message(msg(pr="h", c=3, i=4))  # same deltas, another count
    assert await asked(sent) == 2
    p.on_message(msg(pr="h", c=7))  # a peer that does not number its deltas: the count
    assert await asked(sent) == 3
    assert [m["user"] for m in p.members("t:r")] == ["x"]


async def test_deltas_and_heartbeats_carry_the_number() -> None:
    sent = Sent()
    p = Presence(sent, "a", lambda c: None, interval_s=0.1)  # type: ignore[arg-type]
    await p.start()
    p.joined("t:r", "x")
    await asyncio.sleep(0.25)
    await p.stop()
    d = next(m for m in sent.messages if m["pr"] == "d")
    h = [m for m in sent.messages if m["pr"] == "h"]
    assert d["i"] == 1 and h and h[-1] == {"pr": "h", "n": "a", "c": 1, "i": 1}
