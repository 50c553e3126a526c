"""The Broker contract (``tocsin/broker/base.py``), the same tests for every broker."""

from __future__ import annotations

import asyncio

import pytest

from tests.broker.conftest import MakeBroker, Recorder
from tocsin.broker import Broker


async def test_start_reports_up_and_healthy(make_broker: MakeBroker) -> None:
    broker, rec = await make_broker()
    assert isinstance(broker, Broker)
    assert broker.healthy
    assert rec.states == [True]


async def test_publish_reaches_every_node_including_sender(make_broker: MakeBroker) -> None:
    nodes = [await make_broker() for _ in range(3)]
    await nodes[1][0].publish(b"hello")
    for _, rec in nodes:
        await rec.wait(lambda rec=rec: rec.messages == [b"hello"], what="the message")


async def test_messages_of_one_publisher_arrive_in_order(make_broker: MakeBroker) -> None:
    (a, rec_a), (_, rec_b) = await make_broker(), await make_broker()
    sent = [f"m{i}".encode() for i in range(500)]
    for m in sent:
        await a.publish(m)
    for rec in (rec_a, rec_b):
        await rec.wait(lambda rec=rec: len(rec.messages) >= len(sent), what="500 messages")
        assert rec.messages == sent


async def test_concurrent_publishers_each_keep_their_order(make_broker: MakeBroker) -> None:
    nodes = [await make_broker() for _ in range(4)]

    async def burst(i: int) -> None:
        for j in range(100):
            await nodes[i][0].publish(f"{i}:{j}".encode())

    await asyncio.gather(*(burst(i) for i in range(4)))
    for _, rec in nodes:
        await rec.wait(lambda rec=rec: len(rec.messages) >= 400, what="400 messages")
        assert len(rec.messages) == 400  # nothing duplicated
        for i in range(4):
            mine = [m for m in rec.messages if m.startswith(f"{i}:".encode())]
            assert mine == [f"{i}:{j}".encode() for j in range(100)]


async def test_binary_and_large_payloads_round_trip(make_broker: MakeBroker) -> None:
    (a, rec), _ = await make_broker(), await make_broker()
    payloads = [bytes(range(256)), b"", b"\x00\r\n$-1\r\n*3\r\n", b"x" * 1_000_000]
    for p in payloads:
        await a.publish(p)
    await rec.wait(lambda: len(rec.messages) == len(payloads), what="payloads")
    assert rec.messages == payloads


async def test_channels_are_isolated(make_broker: MakeBroker) -> None:
    (a, rec_a) = await make_broker("iso-a-" + str(id(make_broker)))
    (b, rec_b) = await make_broker("iso-b-" + str(id(make_broker)))
    await a.publish(b"for a")
    await b.publish(b"for b")
    await rec_a.wait(lambda: rec_a.messages == [b"for a"], what="a's message")
    await rec_b.wait(lambda: rec_b.messages == [b"for b"], what="b's message")
    await asyncio.sleep(0.1)
    assert rec_a.messages == [b"for a"] and rec_b.messages == [b"for b"]


async def test_close_is_idempotent_and_stops_delivery(make_broker: MakeBroker) -> None:
    (a, rec_a), (b, rec_b) = await make_broker(), await make_broker()
    await b.close()
    await b.close()
    assert not b.healthy
    await a.publish(b"after close")
    await rec_a.wait(lambda: rec_a.messages == [b"after close"], what="a's own message")
    await asyncio.sleep(0.1)
    assert rec_b.messages == []


async def test_handler_exception_does_not_stop_delivery(make_broker: MakeBroker) -> None:
    broker, rec = await make_broker()
    other, _ = await make_broker()
    seen: list[bytes] = []

    # One more node on the channel whose handler raises on the first message.
    calls = {"n": 0}

    def flaky(message: bytes) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("handler bug")
        seen.append(message)

    bad_rec = Recorder()
    bad = type(broker)(broker.url)
    try:
        await bad.start(flaky, bad_rec.on_state)
        await other.publish(b"1")
        await other.publish(b"2")
        await rec.wait(lambda: len(seen) == 1, what="the second message")
        assert seen == [b"2"]
    finally:
        await bad.close()


@pytest.mark.parametrize("n", [1, 50])
async def test_one_publish_is_one_message_per_node(make_broker: MakeBroker, n: int) -> None:
    """Fan-out cost: a publish reaches each node once, however many nodes there are."""
    nodes = [await make_broker() for _ in range(n)]
    await nodes[0][0].publish(b"once")
    for _, rec in nodes:
        await rec.wait(lambda rec=rec: len(rec.messages) == 1, what="one message")
    await asyncio.sleep(0.05)
    assert all(rec.messages == [b"once"] for _, rec in nodes)
