"""Presence on one real server (memory://): the routes, ``presence`` frames on topic
streams without an ``id:`` line (resuming is unaffected), reported states, the leave
grace, and who may ask what; presence over WebSocket (``"presence": true`` on a
topic subscription)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from tests.support.server import API_KEY, ServerProcess, mint, start_server
from tests.support.sse import open_frames
from tests.support.wait import eventually

INTERVAL = "0.5s"  # grace = 0.5 s


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path_factory.mktemp("presence"),
                       extra=["--presence-interval", INTERVAL, "--rate-reads", "off"])
    yield srv
    srv.stop()


def client(srv: ServerProcess, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=srv.url, headers={"Authorization": f"Bearer {token}"},
                             timeout=10)


async def members(srv: ServerProcess, topic: str) -> list[tuple[str, str]]:
    async with client(srv, API_KEY) as c:
        r = await c.get(f"/api/topics/{topic}/presence")
        r.raise_for_status()
        return [(m["user"], m["state"]) for m in r.json()["members"]]


async def test_presence_frames_routes_and_resume(server: ServerProcess) -> None:
    topic = "room1"
    url = f"{server.url}/api/topics/{topic}/stream?presence=1"
    alice_t, bob_t = mint("alice", [topic]), mint("bob", [topic])
    alice = await open_frames(url, alice_t)
    await alice.until(lambda s: ("alice", "active") in s.presence())
    plain = await open_frames(url.split("?")[0], alice_t)  # did not ask for signals
    async with client(server, API_KEY) as pub:
        r = await pub.post(f"/api/topics/{topic}/events", json={"type": "t", "title": "one"})
        assert r.status_code == 201
    await alice.until(lambda s: any(f.event == "activity" for f in s.events))
    first_id = next(f.id for f in alice.events if f.event == "activity")
    # Two tabs of bob: one member.
    bobs = [await open_frames(url, bob_t) for _ in range(2)]
    await alice.until(lambda s: ("bob", "active") in s.presence())
    assert await members(server, topic) == [("alice", "active"), ("bob", "active")]
    async with client(server, bob_t) as bob_http:
        r = await bob_http.put("/api/presence", json={"state": "idle"})
        assert r.status_code == 200 and r.json()["state"] == "idle"
        assert (await bob_http.put("/api/presence", json={"state": "away"})).status_code == 400
        # A subscriber may see a topic it is allowed, not another, nor users.
        assert (await bob_http.get(f"/api/topics/{topic}/presence")).status_code == 200
        assert (await bob_http.get("/api/topics/elsewhere/presence")).status_code == 403
        assert (await bob_http.get("/api/users/alice/presence")).status_code == 403
    await alice.until(lambda s: ("bob", "idle") in s.presence())
    async with client(server, API_KEY) as pub:
        r = await pub.get("/api/users/bob/presence")
        assert r.json()["state"] == "idle" and r.json()["topics"] == [topic]
        assert (await pub.get("/api/users/nobody/presence")).json()["state"] == "absent"
        r = await pub.post(f"/api/topics/{topic}/events", json={"type": "t", "title": "two"})
    await alice.until(lambda s: len([f for f in s.events if f.event == "activity"]) == 2)
    assert [f.event for f in plain.events] == ["activity", "activity"]  # no signals
    await plain.close()
    # Presence frames carry no id; events keep theirs.
    assert all(f.id == "" for f in alice.events if f.event == "presence")
    assert all(f.id for f in alice.events if f.event == "activity")
    # One tab of bob closes: nothing; the last one: bob leaves after the grace.
    await bobs[0].close()
    await asyncio.sleep(1.0)
    assert ("bob", "absent") not in alice.presence()
    await bobs[1].close()
    await alice.until(lambda s: ("bob", "absent") in s.presence(), within=5)
    assert await members(server, topic) == [("alice", "active")]
    # Resuming after the first event gives exactly the second (presence frames did not
    # move the position).
    again = await open_frames(url, alice_t, first_id)
    await again.until(lambda s: any(f.event == "activity" for f in s.events))
    await asyncio.sleep(0.3)
    assert [f.data["title"] for f in again.events if f.event == "activity"] == ["two"]
    await again.close()
    await alice.close()


async def test_a_reload_within_the_grace_does_not_flap(server: ServerProcess) -> None:
    topic = "room2"
    url = f"{server.url}/api/topics/{topic}/stream?presence=1"
    watcher = await open_frames(url, mint("watcher", [topic]))
    carl = await open_frames(url, mint("carl", [topic]))
    await watcher.until(lambda s: ("carl", "active") in s.presence())
    await carl.close()
    carl = await open_frames(url, mint("carl", [topic]))  # the reloaded page
    await asyncio.sleep(1.5)
    assert watcher.presence().count(("carl", "absent")) == 0
    assert watcher.presence().count(("carl", "active")) == 1
    await carl.close()
    await watcher.close()


_readers: set[asyncio.Task[None]] = set()


async def ws_subscribe(server: ServerProcess, token: str, sub: dict[str, Any]
                       ) -> tuple[Any, list[dict[str, Any]]]:
    """A socket subscribed as ``sub`` asks, and the list its messages are added to."""
    ws = await websockets.connect(server.url.replace("http://", "ws://") + "/api/ws?token="
                                  + token)
    await ws.send(json.dumps({"op": "subscribe", **sub}))
    got: list[dict[str, Any]] = []

    async def read() -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in ws:
                got.append(json.loads(raw))

    _readers.add(task := asyncio.create_task(read()))
    task.add_done_callback(_readers.discard)
    return ws, got


def presence_of(got: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(m["data"]["user"], m["data"]["state"]) for m in got
            if m.get("event") == "presence"]


async def test_presence_frames_over_websocket(server: ServerProcess) -> None:
    topic = "room-ws"
    dana_t = mint("dana", [topic])
    ws, got = await ws_subscribe(server, dana_t, {"stream": f"topic:{topic}",
                                                  "presence": True})
    plain, plain_got = await ws_subscribe(server, dana_t, {"stream": f"topic:{topic}"})
    # An SSE watcher on the same topic: both kinds of frame for the same signals.
    sse = await open_frames(f"{server.url}/api/topics/{topic}/stream?presence=1",
                            mint("watcher", [topic]))
    await eventually(lambda: any(m.get("op") == "subscribed" for m in got)
                and any(m.get("op") == "subscribed" for m in plain_got))
    eve = await open_frames(f"{server.url}/api/topics/{topic}/stream", mint("eve", [topic]))
    await eventually(lambda: ("eve", "active") in presence_of(got))
    await sse.until(lambda s: ("eve", "active") in s.presence())
    async with client(server, API_KEY) as pub:
        r = await pub.post(f"/api/topics/{topic}/events", json={"type": "t", "title": "one"})
        assert r.status_code == 201
    await eventually(lambda: any(m.get("event") == "activity" for m in got)
                and any(m.get("event") == "activity" for m in plain_got))
    await eve.close()
    await eventually(lambda: ("eve", "absent") in presence_of(got), within=5)
    frames = [m for m in got if m.get("event") == "presence"]
    assert frames and all(set(m) == {"stream", "event", "data"} for m in frames)  # no id
    assert all(m["stream"] == f"topic:{topic}" and isinstance(m["data"]["since"], int)
               for m in frames)
    assert all(m["id"] for m in got if m.get("event") == "activity")
    assert [p for p in presence_of(got) if p[0] == "eve"] == \
        [p for p in sse.presence() if p[0] == "eve"] == [("eve", "active"), ("eve", "absent")]
    assert [m.get("event") for m in plain_got if "event" in m] == ["activity"]  # no signals
    await sse.close()
    await ws.close()
    await plain.close()
    # presence must be a boolean: the socket is closed as a bad message
    bad, _ = await ws_subscribe(server, dana_t, {"stream": f"topic:{topic}",
                                                       "presence": "yes"})
    await asyncio.wait_for(bad.wait_closed(), 5)
    assert bad.close_code == 4000
