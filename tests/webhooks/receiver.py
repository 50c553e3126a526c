"""A local webhook receiver on loopback for tests and checks: it answers each POST
with the next scripted status (then 200), records every request, and verifies each
signature with the ``standardwebhooks`` package (a Standard Webhooks library the
receiver side would use)."""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from standardwebhooks import Webhook


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int
    verified: dict[str, Any] | None
    """The payload as the verifier returned it; ``None``: the signature did not verify."""


class Receiver:
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.script: deque[tuple[int, dict[str, str]]] = deque()
        self.received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    verified = Webhook(receiver.secret).verify(body, headers)
                except Exception:
                    verified = None
                with receiver._lock:
                    status, extra = (receiver.script.popleft() if receiver.script
                                     else (200, {}))
                    receiver.received.append(Received(headers, body, status, verified))
                self.send_response(status)
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, *statuses: int, headers: dict[str, str] | None = None) -> None:
        """The next POSTs get these statuses (with ``headers``), then 200 again."""
        with self._lock:
            self.script.extend((s, headers or {}) for s in statuses)

    def events(self) -> list[dict[str, Any]]:
        """Every verified payload received, with its webhook-id and the status given."""
        with self._lock:
            return [{**json.loads(r.body), "webhook-id": r.headers["webhook-id"],
                     "status": r.status, "verified": r.verified is not None}
                    for r in self.received]

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
