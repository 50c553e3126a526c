"""One reader interface over the three transports (SSE, WebSocket, long-poll), so the
contract tests run the same scenario over each. Each records every event it gets."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any, Protocol

import httpx
import websockets
from httpx_sse import aconnect_sse

from tests.support.ids import seq_of
from tests.support.sse import Received

TRANSPORTS = ["sse", "ws", "poll"]


class Reader(Protocol):
    events: list[Received]

    async def wait_for(self, n: int, timeout: float = 15) -> list[Received]: ...
    async def close(self) -> None: ...
    @property
    def ids(self) -> list[int]: ...


class _Recording:
    def __init__(self) -> None:
        self.events: list[Received] = []
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    async def _add(self, items: list[Received]) -> None:
        async with self._changed:
            self.events.extend(items)
            self._changed.notify_all()

    async def wait_for(self, n: int, timeout: float = 15) -> list[Received]:
        async def enough() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.events) >= n)
        try:
            await asyncio.wait_for(enough(), timeout)
        except TimeoutError:
            raise AssertionError(f"got {len(self.events)} of {n} events: "
                                 f"{[e.id for e in self.events][-20:]}") from None
        return self.events

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    @property
    def ids(self) -> list[int]:
        return [seq_of(e.id) for e in self.events]


class SseReader(_Recording):
    """An SSE client recording events with an id (others, e.g. ``presence``, are not
    stream events and are not part of this contract)."""

    def __init__(self, url: str, token: str, since: str | None) -> None:
        super().__init__()
        self.url, self.token, self.since = url, token, since

    async def start(self) -> SseReader:
        connected = asyncio.Event()
        self._task = asyncio.create_task(self._run(connected))
        done, _ = await asyncio.wait({self._task, asyncio.ensure_future(connected.wait())},
                                     timeout=10, return_when=asyncio.FIRST_COMPLETED)
        if self._task in done:
            self._task.result()
        return self

    async def _run(self, connected: asyncio.Event) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        if self.since is not None:
            headers["Last-Event-ID"] = self.since
        async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as client, \
                aconnect_sse(client, "GET", self.url, headers=headers) as source:
            source.response.raise_for_status()
            connected.set()
            async for sse in source.aiter_sse():
                # httpx-sse reports a ping comment as an empty "message" carrying the
                # last id: not an event.
                if sse.id and sse.event and sse.event != "message":
                    await self._add([Received(sse.id, sse.event, json.loads(sse.data))])


class WsReader(_Recording):
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


class PollReader(_Recording):
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
        return await SseReader(base + path, token, since).start()
    if transport == "ws":
        return await WsReader(base, token, stream, since).start()
    return await PollReader(base, token, stream, since).start()
