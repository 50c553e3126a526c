"""A raw WebSocket client on a plain blocking socket, for tests that play a hostile
client: one that stops reading (small ``SO_RCVBUF``), sends frames no library would
(oversized, compressed when nothing was negotiated, fragments without FIN), or floods.

The handshake and the parsing of what the server sends are websockets' sans-I/O
``ClientProtocol``; frames to send are built with its ``Frame`` (masked, as a client's
must be), so nothing here parses the wire by hand.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import psutil
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from tests.support.server import ServerProcess


class RawWs:
    """One socket to ``/api/ws`` of a real server."""

    def __init__(self, srv: ServerProcess, token: str | None = None, *,
                 rcvbuf: int | None = None, headers: dict[str, str] | None = None) -> None:
        query = f"?token={token}" if token else ""
        self.proto = ClientProtocol(parse_uri(f"ws://127.0.0.1:{srv.port}/api/ws{query}"),
                                    max_size=None)
        self.sock = socket.socket()
        if rcvbuf is not None:  # before connect: the window the server sees stays small
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", srv.port))
        request = self.proto.connect()
        for name, value in (headers or {}).items():
            request.headers[name] = value
        self.proto.send_request(request)
        self.sock.sendall(b"".join(self.proto.data_to_send()))
        self.response: Response | None = None
        self.messages: list[Any] = []
        """JSON messages received so far, in order."""
        deadline = time.monotonic() + 10
        while self.response is None and time.monotonic() < deadline:
            self._feed(self.sock.recv(65536))
        assert self.response is not None, "no handshake response"

    # -- sending ------------------------------------------------------------------------
    def send(self, body: dict[str, Any]) -> None:
        self.sock.sendall(self.frame(Opcode.TEXT, json.dumps(body).encode()))

    @staticmethod
    def frame(opcode: Opcode, data: bytes, *, fin: bool = True,
              compress: bool = False) -> bytes:
        """One masked client frame; ``compress``: deflated as permessage-deflate does
        (RSV1 set), whether or not the server agreed to it."""
        deflate = [PerMessageDeflate(False, False, 15, 15)] if compress else []
        return Frame(opcode, data, fin=fin).serialize(mask=True, extensions=deflate)

    def send_raw(self, data: bytes, timeout: float = 10) -> bool:
        """``False`` when the server stopped taking bytes (or closed) within ``timeout``."""
        self.sock.settimeout(timeout)
        try:
            self.sock.sendall(data)
            return True
        except (TimeoutError, OSError):
            return False

    # -- receiving ----------------------------------------------------------------------
    def _feed(self, data: bytes) -> None:
        if not data:
            self.proto.receive_eof()
        else:
            self.proto.receive_data(data)
        for event in self.proto.events_received():
            if isinstance(event, Response):
                self.response = event
            elif isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                self.messages.append(json.loads(bytes(event.data)))

    @property
    def close_frame(self) -> Close | None:
        return self.proto.close_rcvd

    def read_until(self, done: Any, timeout: float = 15) -> bool:
        """Read until ``done(self)`` is true, the server closes, or ``timeout``."""
        deadline = time.monotonic() + timeout
        while not done(self) and time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, min(1.0, deadline - time.monotonic())))
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                data = b""
            self._feed(data)
            if not data:
                break
        return bool(done(self))

    def read_to_close(self, timeout: float = 15) -> Close | None:
        """Everything up to the server's close frame (or the end of the socket)."""
        self.read_until(lambda ws: ws.close_frame is not None, timeout)
        return self.close_frame

    def wait_for(self, pred: Any, timeout: float = 15) -> Any:
        """The first message received for which ``pred(message)`` holds."""
        found: list[Any] = []

        def done(ws: RawWs) -> bool:
            found[:] = [m for m in ws.messages if pred(m)][:1]
            return bool(found)

        assert self.read_until(done, timeout), f"not received; got {self.messages[-5:]}"
        return found[0]

    def close(self) -> None:
        self.sock.close()


def rss_mb(srv: ServerProcess) -> float:
    """The server process's resident memory, MB."""
    return float(psutil.Process(srv.proc.pid).memory_info().rss) / 1e6
