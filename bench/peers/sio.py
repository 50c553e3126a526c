"""python-socketio (ASGI) on uvicorn: rooms per topic and per user, ``emit`` to the room.

Clients connect with ``/socket.io/?topic=T`` or ``?user=U`` (WebSocket transport) and are
put into room ``t:T`` / ``u:U``.  The same JSON payload as Tocsin is emitted as event
``activity`` / ``notification``.  Socket.IO has no Last-Event-ID replay: a reconnecting
client misses what was emitted while it was away.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from typing import Any
from urllib.parse import unquote

import orjson
import socketio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench.peers.common import notification, query_param, topic_event


def build_app() -> socketio.ASGIApp:
    sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*")
    topic_seq: dict[str, int] = defaultdict(int)
    user_seq: dict[str, int] = defaultdict(int)
    conns = 0

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        nonlocal conns
        qs = environ.get("QUERY_STRING", "")
        topic = query_param(qs, "topic")
        user = query_param(qs, "user")
        if topic:
            await sio.enter_room(sid, "t:" + unquote(topic))
        if user:
            await sio.enter_room(sid, "u:" + unquote(user))
        conns += 1

    @sio.event
    async def disconnect(sid: str, *args: Any) -> None:
        nonlocal conns
        conns -= 1

    async def publish(request: Request) -> Response:
        topic = request.path_params["topic"]
        body = orjson.loads(await request.body())
        topic_seq[topic] += 1
        eid = topic_seq[topic]
        await sio.emit("activity", topic_event(eid, topic, body), room="t:" + topic)
        return JSONResponse({"id": str(eid)}, status_code=201)

    async def notify(request: Request) -> Response:
        body = orjson.loads(await request.body())
        ids: dict[str, str] = {}
        for user in body["recipients"]:
            user_seq[user] += 1
            nid = user_seq[user]
            await sio.emit("notification", notification(nid, body), room="u:" + user)
            ids[user] = str(nid)
        return JSONResponse({"ids": ids}, status_code=201)

    async def readyz(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def stats(request: Request) -> Response:
        return JSONResponse({"connections": conns})

    other = Starlette(routes=[
        Route("/api/topics/{topic}/events", publish, methods=["POST"]),
        Route("/api/notifications", notify, methods=["POST"]),
        Route("/readyz", readyz),
        Route("/api/stats", stats),
    ])
    return socketio.ASGIApp(sio, other_asgi_app=other)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    a = ap.parse_args()
    uvicorn.run(build_app(), host=a.host, port=a.port, loop="uvloop", http="httptools",
                log_level="warning", backlog=4096, access_log=False)


if __name__ == "__main__":
    main()
