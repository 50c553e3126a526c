"""Presence on one real server (memory://): the routes, ``presence`` frames on topic
streams without an ``id:`` line (resuming is unaffected), reported states, the leave
grace, and who may ask what."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from tests.presence.rawsse import RawStream
from tests.support.server import API_KEY, ServerProcess, mint, start_server

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
    alice = await RawStream(url, alice_t).start()
    await alice.until(lambda s: ("alice", "active") in s.presence())
    plain = await RawStream(url.split("?")[0], alice_t).start()  # did not ask for signals
    async with client(server, API_KEY) as pub:
        r = await pub.post(f"/api/topics/{topic}/events", json={"type": "t", "title": "one"})
        assert r.status_code == 201
    await alice.until(lambda s: any(f.event == "activity" for f in s.frames))
    first_id = next(f.id for f in alice.frames if f.event == "activity")
    # Two tabs of bob: one member.
    bobs = [await RawStream(url, bob_t).start() for _ in range(2)]
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
    await alice.until(lambda s: len([f for f in s.frames if f.event == "activity"]) == 2)
    assert [f.event for f in plain.frames] == ["activity", "activity"]  # no signals
    await plain.close()
    # Presence frames carry no id; events keep theirs.
    assert all(f.id is None for f in alice.frames if f.event == "presence")
    assert all(f.id for f in alice.frames if f.event == "activity")
    # One tab of bob closes: nothing; the last one: bob leaves after the grace.
    await bobs[0].close()
    await asyncio.sleep(1.0)
    assert ("bob", "absent") not in alice.presence()
    await bobs[1].close()
    await alice.until(lambda s: ("bob", "absent") in s.presence(), within=5)
    assert await members(server, topic) == [("alice", "active")]
    # Resuming after the first event gives exactly the second (presence frames did not
    # move the position).
    again = await RawStream(url, alice_t, last_event_id=first_id).start()
    await again.until(lambda s: any(f.event == "activity" for f in s.frames))
    await asyncio.sleep(0.3)
    assert [f.data["title"] for f in again.frames if f.event == "activity"] == ["two"]
    await again.close()
    await alice.close()


async def test_a_reload_within_the_grace_does_not_flap(server: ServerProcess) -> None:
    topic = "room2"
    url = f"{server.url}/api/topics/{topic}/stream?presence=1"
    watcher = await RawStream(url, mint("watcher", [topic])).start()
    carl = await RawStream(url, mint("carl", [topic])).start()
    await watcher.until(lambda s: ("carl", "active") in s.presence())
    await carl.close()
    carl = await RawStream(url, mint("carl", [topic])).start()  # the reloaded page
    await asyncio.sleep(1.5)
    assert watcher.presence().count(("carl", "absent")) == 0
    assert watcher.presence().count(("carl", "active")) == 1
    await carl.close()
    await watcher.close()
