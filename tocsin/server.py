"""Serving one process with uvicorn (uvloop and httptools where installed).

On SIGTERM/SIGINT the node stops taking connections, ends every open stream at
once (EventSource clients reconnect, to another node behind a load balancer, and
resume from their last event id), lets in-flight publishes finish, then exits.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import socket
from types import FrameType

import uvicorn

from tocsin.api.gate import Gate
from tocsin.app import create_app
from tocsin.config import Settings
from tocsin.streams.hub import Hub

GRACEFUL_SHUTDOWN_S = 15


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, hub: Hub) -> None:
        super().__init__(config)
        self.hub = hub
        self.loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.loop is not None and not self.should_exit:
            self.loop.call_soon_threadsafe(self.hub.close_streams)
        super().handle_exit(sig, frame)


def uvicorn_config(settings: Settings, app: Gate) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http="httptools" if importlib.util.find_spec("httptools") else "h11",
        log_level=settings.log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        backlog=4096,
    )


def run_single(settings: Settings, sock: socket.socket | None = None) -> None:
    """Serve one process until SIGTERM/SIGINT; ``sock`` is a pre-bound listener (workers)."""
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings)
    server = _Server(uvicorn_config(settings, app), app.state.tocsin.hub)
    server.run(sockets=[sock] if sock is not None else None)
