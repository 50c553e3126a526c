"""The test SSE reader over real sockets (httpx + httpx-sse): it checks nothing itself
but records every event, so tests can assert on ids, order and payloads."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx
from httpx_sse import aconnect_sse, connect_sse

from tests.support.ids import seq_of
from tests.support.recording import Recording


@dataclass
class Received:
    id: str
    event: str
    data: Any
    at: float = field(default_factory=time.monotonic, compare=False, repr=False)
    """When it was read (``time.monotonic()``): for latency checks."""


@dataclass
class StreamReader(Recording[Received]):
    url: str
    token: str
    last_event_id: str | None = None
    use_header: bool = True
    # Only events with an id and a name: what the contract of a stream covers (others,
    # e.g. ``presence``, are not stream events).
    stream_events_only: bool = False
    retry: int | None = None
    # Record the ``id:`` line of each frame itself ("" where it has none) rather than the
    # last id the stream set, which is what httpx-sse (and a browser) report: the presence
    # tests check which frames carry an id.
    own_ids: bool = False
    # The token as ``?token=``, as a browser's EventSource sends it (not a header).
    token_in_query: bool = False
    verify: ssl.SSLContext | bool = True  # whom to trust on an https URL
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    closed_by_server: bool = False

    async def _run(self) -> None:
        headers = {} if self.token_in_query else {"Authorization": f"Bearer {self.token}"}
        params = {"token": self.token} if self.token_in_query else {}
        if self.last_event_id is not None:
            if self.use_header:
                headers["Last-Event-ID"] = self.last_event_id
            else:
                params["lastEventId"] = self.last_event_id
        timeout = httpx.Timeout(10, read=None)
        # No params at all unless some: httpx drops the URL's own query for any dict.
        async with httpx.AsyncClient(timeout=timeout, verify=self.verify) as client, aconnect_sse(
            client, "GET", self.url, headers=headers, params=params or None
        ) as source:
            source.response.raise_for_status()
            self.connected.set()
            if self.own_ids:
                await self._read_frames(source.response)
                self.closed_by_server = True
                return
            async for sse in source.aiter_sse():
                if sse.retry is not None:
                    self.retry = sse.retry
                if not sse.event or (sse.event == "message" and not sse.data):
                    continue
                # httpx-sse reports a ping comment as an empty "message" carrying the
                # last id: not an event.
                if self.stream_events_only and (not sse.id or sse.event == "message"):
                    continue
                await self._add([Received(sse.id, sse.event, json.loads(sse.data))])
        self.closed_by_server = True

    async def _read_frames(self, response: httpx.Response) -> None:
        """Each named frame with its own fields only (no id carried over)."""
        fields: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line == "":
                if "event" in fields:
                    await self._add([Received(fields.get("id", ""), fields["event"],
                                              json.loads(fields["data"]))])
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")

    def presence(self) -> list[tuple[str, str]]:
        """The ``(user, state)`` of every ``presence`` frame, in order."""
        return [(e.data["user"], e.data["state"]) for e in self.events if e.event == "presence"]

    async def __aenter__(self) -> StreamReader:
        return await self.start()

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def start(self, timeout: float = 10) -> StreamReader:
        self._task = asyncio.create_task(self._run())
        done, _ = await asyncio.wait(
            {self._task, asyncio.ensure_future(self.connected.wait())},
            timeout=timeout, return_when=asyncio.FIRST_COMPLETED,
        )
        if self._task in done:
            self._task.result()  # raises the connection error
        if not self.connected.is_set():
            raise TimeoutError(f"stream {self.url} did not connect")
        return self


async def open_stream(url: str, token: str, last_event_id: str | None = None,
                      use_header: bool = True) -> StreamReader:
    return await StreamReader(url, token, last_event_id, use_header).start()


async def open_frames(url: str, token: str, last_event_id: str | None = None) -> StreamReader:
    """A reader of every named frame with its own ``id:`` line ("" where it has none)."""
    return await StreamReader(url, token, last_event_id, own_ids=True).start()


def replay_to_head(base_url: str, token: str) -> list[Received]:
    """Every stored event of the token's user stream, replayed from the start up to the
    head the inbox names at the call (synchronous).

    It stops at that head, not at the first ``: ping``: a heartbeat may reach a stream
    before its replay does, and a reader stopping there saw nothing (a CI flake)."""
    headers = {"Authorization": f"Bearer {token}"}
    out: list[Received] = []
    with httpx.Client(base_url=base_url, headers=headers,
                      timeout=httpx.Timeout(10, read=10)) as c:
        inbox = c.get("/api/notifications")
        inbox.raise_for_status()
        head = inbox.json()["lastEventId"]
        if seq_of(head) == 0:
            return out
        with connect_sse(c, "GET", "/api/notifications/stream?lastEventId=0") as source:
            source.response.raise_for_status()
            for sse in source.iter_sse():  # a read timeout raises: the head never came
                if not sse.data:  # the retry frame, and pings (a comment after an id)
                    continue
                out.append(Received(sse.id, sse.event, json.loads(sse.data)))
                if sse.id == head:
                    break
    return out
