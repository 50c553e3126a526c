"""A raw SSE reader for presence tests: keeps each frame's own fields, so a test can
tell a frame without an ``id:`` line from one with (httpx-sse would repeat the last id)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.wait import eventually


@dataclass
class Frame:
    event: str
    data: Any
    id: str | None


@dataclass
class RawStream:
    url: str
    token: str
    last_event_id: str | None = None
    frames: list[Frame] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    _open: asyncio.Event = field(default_factory=asyncio.Event)

    async def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        if self.last_event_id:
            headers["Last-Event-ID"] = self.last_event_id
        async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as client, \
                client.stream("GET", self.url, headers=headers) as r:
            r.raise_for_status()
            self._open.set()
            fields: dict[str, str] = {}
            async for line in r.aiter_lines():
                if line == "":
                    if "event" in fields:
                        self.frames.append(Frame(fields["event"], json.loads(fields["data"]),
                                                 fields.get("id")))
                    fields = {}
                elif not line.startswith(":"):
                    k, _, v = line.partition(": ")
                    fields[k] = v

    async def start(self) -> RawStream:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._open.wait(), 10)
        return self

    def presence(self) -> list[tuple[str, str]]:
        return [(f.data["user"], f.data["state"]) for f in self.frames if f.event == "presence"]

    async def until(self, pred: Any, within: float = 10) -> None:
        def reached() -> bool:
            if self._task is not None and self._task.done():
                self._task.result()  # the reader failed: say why, now
            return bool(pred(self))

        await eventually(reached, within, what=lambda: f"a frame; frames: {self.frames}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
