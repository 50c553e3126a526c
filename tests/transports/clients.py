"""One reader interface over the three transports (SSE, WebSocket, long-poll), so the
contract tests run the same scenario over each. Each records every event it gets."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Protocol

import httpx
import websockets

from tests.support.recording import Recording
from tests.support.sse import Received, StreamReader

TRANSPORTS = ["sse", "ws", "poll"]


class Reader(Protocol):
    events: list[Received]

    async def wait_for(self, n: int, timeout: float = 20) -> list[Received]: ...
    async def close(self) -> None: ...
    @property
    def ids(self) -> list[int]: ...


class WsReader(Recording[Received]):
    """One socket, one subscription (``stream``: ``inbox`` or ``topic:<name>``)."""

    def __init__(self, base: str, token: str, stream: str, since: str | None) -> None:
        super().__init__()
        self.url = base.replace("http://", "ws://") + "/api/ws?token=" + token
        self.stream, self.since = stream, since
        self.acks: list[dict[str, Any]] = []
        self.close_code: int | None = None

    async def start(self) -> WsReader:
        ws = await websockets.connect(self.url)
        sub: dict[str, Any] = {"op": "subscribe", "stream": self.stream}
        if self.since is not None:
            sub["since"] = self.since
        await ws.send(json.dumps(sub))
        while True:  # the ack comes before any event of the subscription
            msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if msg.get("op") == "error":
                await ws.close()
                raise AssertionError(msg)
            if msg.get("op") == "subscribed":
                self.acks.append(msg)
                break
        self._task = asyncio.create_task(self._run(ws))
        return self

    async def _run(self, ws: Any) -> None:
        try:
            async for raw in ws:
                msg = json.loads(raw)
                if "op" in msg:
                    self.acks.append(msg)
                    continue
                assert msg["stream"] == self.stream, msg
                await self._add([Received(msg["id"], msg["event"], msg["data"])])
        except websockets.ConnectionClosed as exc:
            self.close_code = exc.rcvd.code if exc.rcvd else None
        finally:
            await ws.close()


class PollReader(Recording[Received]):
    """A client polling in a loop from ``lastEventId``, as the browser fallback does."""

    def __init__(self, base: str, token: str, stream: str, since: str | None,
                 wait: float = 5) -> None:
        super().__init__()
        path = "/api/notifications/poll" if stream == "inbox" \
            else f"/api/topics/{stream[len('topic:'):]}/poll"
        self.url, self.token, self.since, self.wait = base + path, token, since, wait
        self.replies: list[dict[str, Any]] = []
        self.limited = 0

    async def start(self) -> PollReader:
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(10, read=40),
                                         headers={"Authorization": f"Bearer {self.token}"})
        await self._poll_once()  # the first poll settles the position
        self._task = asyncio.create_task(self._run())
        return self

    async def _poll_once(self) -> None:
        params: dict[str, Any] = {"wait": 0 if self.since is None and not self.replies
                                  else self.wait}
        if self.since is not None:
            params["since"] = self.since
        r = await self._client.get(self.url, params=params)
        while r.status_code == 429:  # the read rate limit applies to polls: back off
            self.limited += 1
            await asyncio.sleep(float(r.headers.get("retry-after", "1")))
            r = await self._client.get(self.url, params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        self.replies.append(body)
        self.since = body["lastEventId"]
        await self._add([Received(e["id"], e["event"], e["data"]) for e in body["events"]])

    async def _run(self) -> None:
        try:
            while True:
                await self._poll_once()
        finally:
            await self._client.aclose()


async def open_reader(transport: str, base: str, token: str, stream: str,
                      since: str | None) -> Reader:
    """``stream``: ``inbox`` or ``topic:<name>``; ``since``: the last id held (None:
    live only)."""
    if transport == "sse":
        path = "/api/notifications/stream" if stream == "inbox" \
            else f"/api/topics/{stream[len('topic:'):]}/stream"
        return await StreamReader(base + path, token, since, stream_events_only=True).start()
    if transport == "ws":
        return await WsReader(base, token, stream, since).start()
    return await PollReader(base, token, stream, since).start()
