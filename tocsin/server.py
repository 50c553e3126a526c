"""Serving one process with uvicorn (uvloop and httptools where installed).

On SIGTERM/SIGINT the node stops taking connections, ends every open stream at
once (EventSource clients reconnect, to another node behind a load balancer, and
resume from their last event id), lets in-flight publishes finish, then exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import socket
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from types import FrameType
from typing import Any

import orjson
import uvicorn

from tocsin import logs, workermetrics
from tocsin.api.gate import Gate
from tocsin.app import create_app
from tocsin.config import Settings
from tocsin.errors import TocsinError
from tocsin.streams.direct import LightEvent
from tocsin.streams.hub import Hub
from tocsin.streams.ws import MAX_MESSAGE_BYTES as WS_MAX_MESSAGE_BYTES

GRACEFUL_SHUTDOWN_S = 15

log = logging.getLogger("tocsin.server")


@dataclass(frozen=True)
class WorkerRole:
    """What the supervisor tells one of its workers (``supervisor.worker_main``)."""

    index: str
    metrics_dir: str | None
    """Where the workers answer each other's ``/metrics`` (``workermetrics.py``)."""
    ready_fd: int | None
    """A pipe to the supervisor: this worker writes ``<index> <pid>`` once it listens."""


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: Gate, role: WorkerRole | None) -> None:
        super().__init__(config)
        self.app = app
        self.hub: Hub = app.state.tocsin.hub
        self.role = role
        self.loop: asyncio.AbstractEventLoop | None = None
        self.metrics_server: asyncio.AbstractServer | None = None
        self.stop_began: float | None = None
        self.streams_closed = (0, 0)
        """(open streams, of which WebSockets) when the stop began."""

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().serve(sockets)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.started or self.should_exit:
            return
        if self.role is None:
            return
        role = self.role
        if role.metrics_dir is not None:
            self.metrics_server = await workermetrics.serve_own(
                role.metrics_dir, role.index, self.app.state.tocsin.metrics.registry)
            self.app.state.worker_metrics = (role.metrics_dir, role.index)
        if role.ready_fd is not None:
            # listening and started: now the supervisor may count this worker as serving
            with contextlib.suppress(OSError):
                os.write(role.ready_fd, f"{role.index} {os.getpid()}\n".encode())
                os.close(role.ready_fd)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.metrics_server is not None:
            self.metrics_server.close()
        await super().shutdown(sockets)
        # here, not after run(): uvicorn re-raises the captured SIGTERM once run() ends
        self.summary()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.stop_began is None:
            self.stop_began = time.monotonic()
            self.streams_closed = (self.hub.connections, self.hub.sockets)
        if self.loop is not None and not self.should_exit:
            self.loop.call_soon_threadsafe(self.hub.close_streams)
        super().handle_exit(sig, frame)

    def summary(self) -> None:
        """The shutdown summary, once everything is closed."""
        if self.stop_began is None:
            return
        streams, sockets = self.streams_closed
        log.info("stopped in %.1fs: %d streams closed (%d WebSockets); clients resume "
                 "from their last event id", time.monotonic() - self.stop_began,
                 streams, sockets)


def _refusal(err: TocsinError) -> bytes:
    body = orjson.dumps(err.body())
    return (f"HTTP/1.1 {err.status} {HTTPStatus(err.status).phrase}\r\n"
            "content-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


DirectConnect = Callable[[Any, asyncio.Transport, Any], bool]
"""``(scope, transport, default_headers) -> taken``: offered each ``GET`` head before a
request task exists (``Gate.connect_direct``); ``True`` when it served the request and
took the socket."""


def limited_protocol(max_head_bytes: int, head_timeout_s: float,
                     direct: DirectConnect | None = None) -> type[Any]:
    """uvicorn's httptools protocol with two bounds its parser lacks (it keeps any
    amount of header bytes, for any time):

    - a request head (request line + headers) larger than ``max_head_bytes`` is
      answered 431 ``headers_too_large`` and the connection closed: the parser is fed
      at most one socket read (<= 256 KiB) past the bound;
    - a connection gets ``head_timeout_s`` from connecting (and from the end of each
      response) to complete a request head; otherwise it is closed. That cuts slow
      header senders and connections that never send a request; a running stream is
      never timed (its head was complete).

    Per socket read it costs one integer test (two while a head is incoming); per
    request one timer.

    With ``direct``, a ``GET`` whose head names a stream is offered to it first: a
    stream that can start idle is parked at once, and this protocol is done with the
    socket (``taken``: what is left of the read is ignored, as a stream's client has
    nothing more to say)."""
    import httptools
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    too_large = _refusal(TocsinError("headers_too_large",
                                     f"The request head is larger than {max_head_bytes} "
                                     "bytes (--max-header-bytes)."))

    class _HeadTooLarge(Exception):
        pass

    class LimitedHttpToolsProtocol(HttpToolsProtocol):
        head_bytes = -1
        """Bytes of the request head received so far; -1 while no head is incoming."""
        head_timer: asyncio.TimerHandle | None = None
        taken = False
        """The socket went to a parked stream (``direct``): every callback is a no-op."""

        def _expect_head(self) -> None:
            self.head_bytes = 0
            if self.head_timer is not None:
                self.head_timer.cancel()
            self.head_timer = self.loop.call_later(head_timeout_s, self._head_timeout)

        def _head_timeout(self) -> None:
            self.head_timer = None
            if self.head_bytes >= 0 and not self.transport.is_closing():
                self.transport.close()  # a slow or silent client: no answer is owed

        def _refuse_head(self) -> None:
            self.head_bytes = -1
            if self.head_timer is not None:
                self.head_timer.cancel()
                self.head_timer = None
            if not self.transport.is_closing():
                self.transport.write(too_large)
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._expect_head()

        def connection_lost(self, exc: Exception | None) -> None:
            if self.head_timer is not None:
                self.head_timer.cancel()
                self.head_timer = None
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self.taken:
                return
            if self.head_bytes < 0:
                super().data_received(data)
                return
            if self.transport.is_closing():
                return
            self.head_bytes += len(data)
            super().data_received(data)
            if self.taken:
                self._let_go()
                return
            if self.head_bytes > max_head_bytes:  # still incomplete after this read
                self._refuse_head()

        def on_message_begin(self) -> None:
            if not self.taken:
                super().on_message_begin()

        def on_url(self, url: bytes) -> None:
            if not self.taken:
                super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            if not self.taken:
                super().on_header(name, value)

        def on_body(self, body: bytes) -> None:
            if not self.taken:
                super().on_body(body)

        def on_message_complete(self) -> None:
            if self.taken:
                return
            super().on_message_complete()
            if self.head_bytes < 0:
                self.head_bytes = 0  # what follows on this connection is the next head

        def on_headers_complete(self) -> None:
            if self.head_bytes > max_head_bytes and self.url is not None and (
                    len(self.url) + sum(len(k) + len(v) + 4 for k, v in self.headers)
                    > max_head_bytes):
                self.head_bytes = max_head_bytes + 1
                raise _HeadTooLarge  # the parser stops: send_400_response answers 431
            if self.taken:
                return
            self.head_bytes = -1
            if self.head_timer is not None:
                self.head_timer.cancel()
                self.head_timer = None
            if direct is not None and b"/stream" in self.url and self._direct():
                return
            super().on_headers_complete()

        def _direct(self) -> bool:
            parser = self.parser
            if parser.get_method() != b"GET" or parser.get_http_version() != "1.1" \
                    or parser.should_upgrade() \
                    or (self.cycle is not None and not self.cycle.response_complete):
                return False
            # the scope as uvicorn completes it (it does the same again if not taken)
            url = httptools.parse_url(self.url)
            path = url.path.decode("ascii")
            if "%" in path:
                path = urllib.parse.unquote(path)
            scope = self.scope
            scope["method"] = "GET"
            scope["path"] = self.root_path + path
            scope["raw_path"] = self.root_path.encode("ascii") + url.path
            scope["query_string"] = url.query or b""
            assert direct is not None
            if not direct(scope, self.transport, self.server_state.default_headers):
                return False
            self.taken = True
            self.connections.discard(self)  # uvicorn's count of live requests
            return True

        def _let_go(self) -> None:
            """Drop what ties this protocol to itself once a stream took its socket (the
            parser holds its bound callbacks: a reference cycle), so refcounting frees it
            as the transport lets go of it. Left to the cyclic collector, every stream
            opened this way became garbage only a full collection frees: in a 10k
            reconnect storm, ~130,000 objects and most of the full collections' cost."""
            self.parser = None  # type: ignore[assignment]
            self.scope = None  # type: ignore[assignment]
            self.headers = None  # type: ignore[assignment]

        def send_400_response(self, msg: str) -> None:
            if self.head_bytes > max_head_bytes:
                self._refuse_head()
            else:
                super().send_400_response(msg)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.head_timer is None:
                self._expect_head()

    return LimitedHttpToolsProtocol


class _LightQueue:
    """What uvicorn's WebSocket protocol uses of its ``asyncio.Queue`` (``put_nowait``,
    ``get``, ``empty``, ``qsize``) for one reader: a list and, only while the reader waits, a
    future. An ``asyncio.Queue`` holds three deques (~2.3 KB) per socket for its whole
    life (measured with tracemalloc, 1,000 idle sockets)."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        w, self._waiter = self._waiter, None
        if w is not None and not w.done():
            w.set_result(None)

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)

    async def get(self) -> Any:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return self._items.pop(0)


WS_FEED_BYTES = 4096
"""Bytes of a socket read handed to the WebSocket parser at a time (``limited_ws``)."""


def limited_ws(write_timeout_s: float) -> type[Any] | str:
    """uvicorn's WebSocket protocol (the websockets library's sans-I/O implementation,
    which uvicorn's ``auto`` picks with the ``websockets`` package this project
    requires) with two bounds it lacks:

    - **Messages parsed ahead of the application.** uvicorn parses a whole socket read
      (up to 256 KiB) at once and queues every message in it, pausing reads only
      after: 256 KiB of 19-byte pings became ~13,000 queued dicts (~4 MB) per socket
      while ``streams/ws.py`` was holding back. Here a read is parsed
      ``WS_FEED_BYTES`` at a time, and the rest is kept as bytes until the
      application has taken what was queued.
    - **Memory per idle socket.** The message queue and the flow-control event are
      light equivalents (``_LightQueue``, ``LightEvent``: no deque each until waited
      on), and the handshake's request and response (their headers) are let go once
      the socket is accepted.
    - **Writes that never drain.** A socket whose transport has stayed paused (its
      buffers full: the client takes nothing) for ``write_timeout_s`` is aborted.
      Closing it otherwise (a 4008 from ``streams/ws.py``, or uvicorn's keepalive
      timeout) waits for the buffer to drain, which a client advertising a zero
      window never lets happen; the abort frees the buffers and ends the session
      (its ``send`` sees the disconnect). Costs nothing until a socket backs up.

    ``"auto"`` (neither bound; the size limits of ``uvicorn_config`` still apply) on a
    uvicorn without that implementation."""
    try:
        from uvicorn.protocols.websockets.websockets_sansio_impl import (
            WebSocketsSansIOProtocol,
        )
    except ImportError:  # pragma: no cover - uvicorn older than the sans-I/O protocol
        return "auto"
    timeout_s = write_timeout_s

    class LimitedWebSocketProtocol(WebSocketsSansIOProtocol):
        write_timeout_s = float(timeout_s)
        """Also what ``streams/wspark.py`` recognises the protocol by, and applies to a
        socket it takes over."""
        write_timer: asyncio.TimerHandle | None = None
        backlog = b""
        """Read but not yet parsed: waits for the application to take its messages."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.queue = _LightQueue()  # type: ignore[assignment]
            self.writable = LightEvent(True)  # type: ignore[assignment]

        async def send(self, message: Any) -> None:
            await super().send(message)
            if message["type"] == "websocket.accept":
                # read only by the handshake (uvicorn writes the response from it)
                self.request = self.response = None  # type: ignore[assignment]

        # -- reading: parse no further ahead than the application -----------------------
        def data_received(self, data: bytes) -> None:
            if self.close_sent:  # past the application's close uvicorn drops messages
                data, self.backlog = self.backlog + data, b""
                super().data_received(data)
            elif self.backlog:  # reading stays paused until the application catches up
                self.backlog += data
                if not self.read_paused:
                    self.read_paused = True
                    self.transport.pause_reading()
            else:
                self._feed(data)

        def _feed(self, data: bytes) -> None:
            view = memoryview(data)
            while view and not self.transport.is_closing():
                super().data_received(bytes(view[:WS_FEED_BYTES]))
                view = view[WS_FEED_BYTES:]
                if view and not self.queue.empty():
                    self.backlog = bytes(view)
                    if not self.read_paused:
                        self.read_paused = True
                        self.transport.pause_reading()
                    return

        async def receive(self) -> Any:
            message = await super().receive()
            if self.backlog and self.queue.empty():
                data, self.backlog = self.backlog, b""
                self._feed(data)  # pauses reading again if it queued a message
            return message

        # -- writing: drop a client that takes nothing ----------------------------------
        def pause_writing(self) -> None:
            super().pause_writing()
            if self.write_timer is None:
                self.write_timer = self.loop.call_later(write_timeout_s, self._write_timeout)

        def resume_writing(self) -> None:
            super().resume_writing()
            self._cancel_write_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_write_timer()
            self.backlog = b""
            super().connection_lost(exc)

        def _cancel_write_timer(self) -> None:
            if self.write_timer is not None:
                self.write_timer.cancel()
                self.write_timer = None

        def _write_timeout(self) -> None:
            self.write_timer = None
            self.transport.abort()  # connection_lost follows: the app sees a disconnect

    return LimitedWebSocketProtocol


def uvicorn_config(settings: Settings, app: Gate) -> uvicorn.Config:
    httptools = importlib.util.find_spec("httptools") is not None
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http=limited_protocol(settings.max_header_bytes, settings.header_timeout_s,
                              app.connect_direct)
        if httptools else "h11",
        h11_max_incomplete_event_size=settings.max_header_bytes,
        # WebSocket limits at the protocol layer, before a message is assembled: a frame
        # whose header declares more, or fragments adding up to more, close the socket
        # with 1009 without the payload being buffered (``streams/ws.py`` checks the
        # same size again for servers that do not apply this).
        ws_max_size=WS_MAX_MESSAGE_BYTES,
        # No permessage-deflate: wsproto inflates a frame without any limit (16 KB of
        # deflate became 16 MiB before any size check), and with the websockets library,
        # where inflation is capped, each socket would still hold ~40 KB of zlib state
        # and compress every shared frame once per socket.
        ws_per_message_deflate=False,
        ws=limited_ws(settings.ws_write_timeout_s),
        log_level=settings.log_level,
        log_config=logs.UVICORN_LOG_CONFIG,  # our format: a timestamp and the writer
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        backlog=4096,
    )


def run_single(settings: Settings, sock: socket.socket | None = None,
               role: WorkerRole | None = None) -> None:
    """Serve one process until SIGTERM/SIGINT; ``sock`` is a pre-bound listener and
    ``role`` what the supervisor asks of a worker."""
    logs.configure(settings.log_level)
    app = create_app(settings)
    server = _Server(uvicorn_config(settings, app), app, role)
    server.run(sockets=[sock] if sock is not None else None)
