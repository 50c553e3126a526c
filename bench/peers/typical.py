"""The typical Python build: FastAPI + sse-starlette + one ``asyncio.Queue`` per client.

Single node: publishing puts the event dict into every subscriber's queue; each
connection's generator awaits its queue and sse-starlette encodes the frame per client.
Resume by ``Last-Event-ID`` from an in-memory deque (what such an app would bolt on).

Multi-node (``--redis URL``): the broadcaster package with Redis pub/sub; ids come from
Redis ``INCR``; every SSE connection subscribes through ``broadcast.subscribe(channel)``
(the pattern from broadcaster's README).  No replay in that mode.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from pydantic import BaseModel
from sse_starlette.sse import EventSourceResponse

from bench.peers.common import notification, topic_event

HISTORY = 10_000


class EventIn(BaseModel):
    type: str
    title: str
    body: str | None = None
    actor: str | None = None
    data: dict[str, Any] | None = None


class NotificationIn(BaseModel):
    recipients: list[str]
    type: str
    title: str
    body: str | None = None
    priority: str = "medium"
    data: dict[str, Any] | None = None


async def _hold(broadcast: Any, channel: str, stop: asyncio.Event) -> None:
    async with broadcast.subscribe(channel=channel):
        await stop.wait()


def build_app(redis_url: str | None) -> FastAPI:
    broadcast: Any = None
    redis: Any = None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal broadcast, redis
        if redis_url:
            from broadcaster import Broadcast
            from redis.asyncio import Redis

            broadcast = Broadcast(redis_url)
            await broadcast.connect()
            redis = Redis.from_url(redis_url)
            async for key in redis.scan_iter("typical:*"):
                await redis.delete(key)
            # broadcaster 0.3.1 with redis-py >= 5: the first subscribe races the
            # listener (it starts ``pubsub.listen()`` before the SUBSCRIBE reply has
            # registered the channel, the loop ends at once and waits for the next
            # *new* channel).  Two held warm-up channels get the listener running.
            for ch in ("typical:warm1", "typical:warm2"):
                hold.append(asyncio.create_task(_hold(broadcast, ch, stop)))
                await asyncio.sleep(0.2)
        yield
        if broadcast is not None:
            stop.set()
            await asyncio.gather(*hold, return_exceptions=True)
            await broadcast.disconnect()
            await redis.aclose()

    stop = asyncio.Event()
    sub_lock = asyncio.Lock()
    hold: list[asyncio.Task[None]] = []
    app = FastAPI(lifespan=lifespan)
    topics: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
    users: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
    topic_seq: dict[str, int] = defaultdict(int)
    user_seq: dict[str, int] = defaultdict(int)
    topic_hist: dict[str, deque[dict[str, Any]]] = defaultdict(lambda: deque(maxlen=HISTORY))
    user_hist: dict[str, deque[dict[str, Any]]] = defaultdict(lambda: deque(maxlen=HISTORY))
    conns = 0

    def stream(request: Request, registry: dict[str, set[asyncio.Queue[dict[str, Any]]]],
               hist: dict[str, deque[dict[str, Any]]], key: str, event: str,
               channel: str) -> EventSourceResponse:
        last = request.headers.get("last-event-id") or request.query_params.get("lastEventId")

        async def local() -> AsyncIterator[dict[str, Any]]:
            nonlocal conns
            q: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
            registry[key].add(q)
            conns += 1
            try:
                if last:
                    after = int(last)
                    for ev in list(hist[key]):
                        if int(ev["id"]) > after:
                            yield {"id": ev["id"], "event": event, "data": json.dumps(ev)}
                while True:
                    ev = await q.get()
                    yield {"id": ev["id"], "event": event, "data": json.dumps(ev)}
            finally:
                conns -= 1
                registry[key].discard(q)

        async def via_redis() -> AsyncIterator[dict[str, Any]]:
            nonlocal conns
            conns += 1
            # broadcaster 0.3.1 loses subscribers when several subscribe to a new channel
            # concurrently (each awaits the Redis SUBSCRIBE, then overwrites the channel's
            # queue set with its own); serialising the subscribe step avoids it.
            cm = broadcast.subscribe(channel=channel)
            async with sub_lock:
                sub = await cm.__aenter__()
            try:
                async for msg in sub:
                    ev = json.loads(msg.message)
                    yield {"id": ev["id"], "event": event, "data": msg.message}
            finally:
                conns -= 1
                await cm.__aexit__(None, None, None)

        gen = via_redis() if broadcast is not None else local()
        return EventSourceResponse(gen, ping=15, sep="\n")

    @app.get("/readyz")
    async def readyz() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/api/stats")
    async def stats() -> dict[str, int]:
        return {"connections": conns}

    @app.get("/api/topics/{topic}/stream")
    async def topic_stream(topic: str, request: Request) -> EventSourceResponse:
        return stream(request, topics, topic_hist, topic, "activity", "t:" + topic)

    @app.get("/api/notifications/stream")
    async def user_stream(user: str, request: Request) -> EventSourceResponse:
        return stream(request, users, user_hist, user, "notification", "u:" + user)

    @app.post("/api/topics/{topic}/events", status_code=201)
    async def publish(topic: str, ev: EventIn) -> dict[str, str]:
        body = ev.model_dump()
        if broadcast is not None:
            eid = int(await redis.incr("typical:t:" + topic))
            await broadcast.publish("t:" + topic, json.dumps(topic_event(eid, topic, body)))
            return {"id": str(eid)}
        topic_seq[topic] += 1
        eid = topic_seq[topic]
        out = topic_event(eid, topic, body)
        topic_hist[topic].append(out)
        for q in topics[topic]:
            q.put_nowait(out)
        return {"id": str(eid)}

    @app.post("/api/notifications", status_code=201)
    async def notify(n: NotificationIn) -> dict[str, dict[str, str]]:
        body = n.model_dump()
        ids: dict[str, str] = {}
        for user in n.recipients:
            if broadcast is not None:
                nid = int(await redis.incr("typical:u:" + user))
                await broadcast.publish("u:" + user, json.dumps(notification(nid, body)))
            else:
                user_seq[user] += 1
                nid = user_seq[user]
                out = notification(nid, body)
                user_hist[user].append(out)
                for q in users.get(user, ()):
                    q.put_nowait(out)
            ids[user] = str(nid)
        return {"ids": ids}

    return app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--redis", default=None, help="broadcaster Redis URL (multi-node mode)")
    a = ap.parse_args()
    uvicorn.run(build_app(a.redis), host=a.host, port=a.port, loop="uvloop", http="httptools",
                log_level="warning", backlog=4096, access_log=False)


if __name__ == "__main__":
    main()
