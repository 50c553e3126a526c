"""The fast tier: the whole application (gate, hot routes, FastAPI) in this process,
called through httpx's ASGI transport — the same object ``tocsin serve`` runs, without
a server process. Streams still need a real server (the transport buffers responses)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from tests.support.server import API_KEY, JWT_SECRET, mint
from tocsin.api.gate import Gate
from tocsin.app import create_app
from tocsin.config import Settings

BASE_URL = "http://tocsin.test"


@contextlib.asynccontextmanager
async def lifespan(app: Gate) -> AsyncIterator[None]:
    """Run the app's startup and shutdown as a server would."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"},
                                    "state": {}}, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    started = await asyncio.wait_for(outbox.get(), 30)
    assert started["type"] == "lifespan.startup.complete", started
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await asyncio.wait_for(outbox.get(), 30)
        await task


@contextlib.asynccontextmanager
async def in_process(database_url: str, **settings: Any) -> AsyncIterator[InProcess]:
    s = Settings(database_url=database_url, api_keys=[API_KEY], jwt_secret=JWT_SECRET,
                 **settings)
    app = create_app(s)
    async with lifespan(app):
        yield InProcess(app)


class InProcess:
    """Clients for the in-process app, shaped like ``ServerProcess``'s."""

    def __init__(self, app: Gate) -> None:
        self.app = app
        self.url = BASE_URL
        self.api_key = API_KEY

    def client(self, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                 base_url=BASE_URL, headers=headers or {}, timeout=10)

    def publisher(self) -> httpx.AsyncClient:
        return self.client({"Authorization": f"Bearer {API_KEY}"})

    def subscriber(self, user: str, topics: list[str] | None = None) -> httpx.AsyncClient:
        return self.client({"Authorization": f"Bearer {mint(user, topics)}"})
