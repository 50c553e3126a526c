"""``GET /api/ws`` across nodes and workers: a socket on one node receives, in order and
exactly once, what is published through another node (inbox and topic on one socket),
resumes on the other node with the ids it had (``since``), and ``tocsin serve
--workers 2`` serves sockets on the shared port whichever worker a publish goes through.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.cluster.helpers import (
    channel_url,
    publish_note,
    publish_topic,
    publisher,
    start_nodes,
)
from tests.cluster.workers import client_on, start_workers, stats_by_worker
from tests.support.ids import seq_of
from tests.support.server import ServerProcess, mint
from tests.support.services import REDIS_URL
from tests.support.wait import eventually

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

TOPIC = "team:core"


class WsClient:
    """One socket, any number of subscriptions; records each stream's frames in arrival
    order and every control message (acks, errors)."""

    def __init__(self, base: str, token: str, *, auth_message: bool = False) -> None:
        self.url = base.replace("http://", "ws://") + "/api/ws"
        if not auth_message:
            self.url += "?token=" + token
        self.token, self.auth_message = token, auth_message
        self.frames: dict[str, list[dict[str, Any]]] = {}
        self.control: list[dict[str, Any]] = []
        self.close_code: int | None = None
        self._ws: Any = None
        self._task: asyncio.Task[None] | None = None

    async def connect(self) -> WsClient:
        self._ws = await websockets.connect(self.url)
        if self.auth_message:
            await self._ws.send(json.dumps({"op": "auth", "token": self.token}))
        self._task = asyncio.create_task(self._run())
        if self.auth_message:
            await self._wait(lambda: any(c.get("op") == "authenticated" for c in self.control),
                             "authenticated")
        return self

    async def _run(self) -> None:
        try:
            async for raw in self._ws:
                msg = json.loads(raw)
                if "op" in msg:
                    self.control.append(msg)
                else:
                    self.frames.setdefault(msg["stream"], []).append(msg)
        except websockets.ConnectionClosed:
            pass
        # ``async for`` ends quietly on 1000/1001; 1006: closed without a close frame
        self.close_code = self._ws.close_code

    async def _wait(self, pred: Any, what: str, within: float = 10) -> None:
        def state() -> str:
            tails = {k: [f["id"] for f in v][-5:] for k, v in self.frames.items()}
            return (f"{what} (close {self.close_code}, control {self.control[-3:]},"
                    f" frames {tails})")

        def done() -> bool:
            if pred():
                return True
            if self.close_code is not None:  # nothing more can come: fail now
                raise AssertionError(f"closed while waiting for {state()}")
            return False

        await eventually(done, within, what=state)

    async def subscribe(self, stream: str, since: str | None = None) -> dict[str, Any]:
        op: dict[str, Any] = {"op": "subscribe", "stream": stream}
        if since is not None:
            op["since"] = since
        n = len(self.control)
        await self._ws.send(json.dumps(op))

        def acked() -> bool:
            return any(c.get("stream") == stream and c.get("op") in ("subscribed", "error")
                       for c in self.control[n:])

        await self._wait(acked, f"ack of {stream}")
        ack = next(c for c in self.control[n:] if c.get("stream") == stream
                   and c.get("op") in ("subscribed", "error"))
        assert ack["op"] == "subscribed", ack
        return ack

    async def wait_for(self, stream: str, n: int, within: float = 10) -> list[dict[str, Any]]:
        await self._wait(lambda: len(self.frames.get(stream, [])) >= n,
                         f"{n} frames on {stream}", within)
        return self.frames[stream]

    def seqs(self, stream: str) -> list[int]:
        return [seq_of(f["id"]) for f in self.frames.get(stream, [])]

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 5)


async def _publish_mixed(p: Any, user: str, tag: str, n: int) -> tuple[list[str], list[str]]:
    """``n`` notifications to ``user`` and one topic event after every other one."""
    notes, events = [], []
    for i in range(n):
        notes.append(await publish_note(p, user, f"{tag} note {i}"))
        if i % 2 == 0:
            events.append(await publish_topic(p, TOPIC, f"{tag} activity {i}"))
    return notes, events


def _data_ids(frames: list[dict[str, Any]]) -> list[str]:
    return [f["data"]["id"] for f in frames]


async def test_ws_on_one_node_gets_what_another_publishes_and_resumes_elsewhere(
        tmp_path: Path, pg_url: str, nodes_to_stop: list[ServerProcess]) -> None:
    nodes = await start_nodes(tmp_path, 2, database=pg_url, broker=channel_url(REDIS_URL))
    nodes_to_stop.extend(nodes)
    n1, n2 = nodes
    token = mint("alice", ["team:*"])

    on2 = await WsClient(n2.url, token).connect()
    ack_inbox = await on2.subscribe("inbox")
    ack_topic = await on2.subscribe(f"topic:{TOPIC}")
    assert seq_of(ack_inbox["position"]) == 0 and seq_of(ack_topic["position"]) == 0
    async with publisher(n1.url) as p1, publisher(n2.url) as p2:
        notes, events = await _publish_mixed(p1, "alice", "round 1", 6)
        got = await on2.wait_for("inbox", len(notes))
        tgot = await on2.wait_for(f"topic:{TOPIC}", len(events))
        await asyncio.sleep(0.3)  # nothing more may follow
        assert on2.seqs("inbox") == list(range(1, len(notes) + 1))
        assert _data_ids(got) == notes and {f["event"] for f in got} == {"notification"}
        assert on2.seqs(f"topic:{TOPIC}") == list(range(1, len(events) + 1))
        assert _data_ids(tgot) == events and {f["event"] for f in tgot} == {"activity"}
        assert [c["op"] for c in on2.control] == ["subscribed", "subscribed"]

        # The client goes away holding the last ids it had from node 2; more is
        # published through both nodes; it comes back on node 1 with those ids.
        held = {s: on2.frames[s][-1]["id"] for s in ("inbox", f"topic:{TOPIC}")}
        mid = on2.frames["inbox"][2]["id"]
        await on2.close()
        more_a, ev_a = await _publish_mixed(p2, "alice", "away via 2", 3)
        more_b, ev_b = await _publish_mixed(p1, "alice", "away via 1", 2)
        more, more_ev = more_a + more_b, ev_a + ev_b

        back = await WsClient(n1.url, token, auth_message=True).connect()
        ack = await back.subscribe("inbox", since=held["inbox"])
        assert ack["position"] == held["inbox"], ack
        await back.subscribe(f"topic:{TOPIC}", since=held[f"topic:{TOPIC}"])
        got = await back.wait_for("inbox", len(more))
        tgot = await back.wait_for(f"topic:{TOPIC}", len(more_ev))
        # and it stays live on node 1 for what node 2 publishes next
        last_note = await publish_note(p2, "alice", "live after resume")
        await back.wait_for("inbox", len(more) + 1)
        await asyncio.sleep(0.3)
        assert back.seqs("inbox") == list(range(len(notes) + 1, len(notes) + len(more) + 2))
        assert _data_ids(got) == [*more, last_note]
        assert back.seqs(f"topic:{TOPIC}") == list(
            range(len(events) + 1, len(events) + len(more_ev) + 1))
        assert _data_ids(tgot) == more_ev
        assert not any(c.get("op") == "error" for c in back.control), back.control

        # Resubscribing on the same socket from an earlier id (one from node 2)
        # repositions the stream: exactly the suffix after it, once.
        back.frames.pop("inbox")
        await back.subscribe("inbox", since=mid)
        rest = await back.wait_for("inbox", len(notes) + len(more) + 1 - 3)
        await asyncio.sleep(0.3)
        assert back.seqs("inbox") == list(range(4, len(notes) + len(more) + 2))
        assert _data_ids(rest) == [*notes[3:], *more, last_note]
        await back.close()


async def test_ws_with_two_workers_on_the_shared_port(
        tmp_path: Path, pg_url: str, nodes_to_stop: list[ServerProcess]) -> None:
    srv = await start_workers(tmp_path, pg_url, nodes_to_stop)
    workers = await stats_by_worker(srv.url)
    assert len(workers) == 2, "the second worker never answered"

    users = [f"ws{i}" for i in range(12)]
    clients = []
    for i, u in enumerate(users):  # half send their token in the first message
        c = await WsClient(srv.url, mint(u, ["team:*"]), auth_message=i % 2 == 1).connect()
        await c.subscribe("inbox")
        await c.subscribe(f"topic:{TOPIC}")
        clients.append(c)
    spread = await stats_by_worker(srv.url)
    assert sum(spread.values()) == 2 * len(users) and all(spread.values()), \
        f"sockets were not spread over both workers: {spread}"

    acked: dict[str, list[str]] = {u: [] for u in users}
    events: list[str] = []
    for worker in spread:  # one note to every user and two topic events via each worker
        p = await client_on(srv.url, worker)
        try:
            for u in users:
                acked[u].append(await publish_note(p, u, f"via {worker}"))
            for k in range(2):
                events.append(await publish_topic(p, TOPIC, f"via {worker} #{k}"))
        finally:
            await p.aclose()
    for u, c in zip(users, clients, strict=True):
        await c.wait_for("inbox", len(acked[u]))
        await c.wait_for(f"topic:{TOPIC}", len(events))
    await asyncio.sleep(0.3)
    for u, c in zip(users, clients, strict=True):
        assert c.seqs("inbox") == list(range(1, len(acked[u]) + 1)), u
        assert _data_ids(c.frames["inbox"]) == acked[u], u
        assert c.seqs(f"topic:{TOPIC}") == list(range(1, len(events) + 1)), u
        assert _data_ids(c.frames[f"topic:{TOPIC}"]) == events, u
        assert not any(m.get("op") == "error" for m in c.control), c.control

    # SIGTERM to the supervisor: every socket is closed by its worker (1001).
    t0 = time.monotonic()
    assert srv.terminate(timeout=30) == 0
    assert time.monotonic() - t0 < 20
    for c in clients:
        await c._wait(lambda c=c: c.close_code is not None, "close at shutdown")
        assert c.close_code == 1001, c.close_code
        await c.close()
