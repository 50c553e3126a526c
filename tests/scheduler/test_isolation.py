"""A slow timer holds only itself (real server, fake clock): an escalation step's post
to a named webhook target whose receiver hangs (8 s, under the 10 s request timeout)
runs as its own task, so the incident's next step, due while the post still hangs, is
claimed and run at once (before, the loop awaited the whole claimed batch and the
step waited for the receiver)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.clock import FAST, Clock
from tests.support.server import ServerProcess, served
from tests.support.wait import wait_until

HANG_S = 8.0


class HangingReceiver:
    """Takes each POST and answers only after :data:`HANG_S` (or when released)."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.answered = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver.arrived.set()
                receiver.release.wait(HANG_S)
                receiver.answered.set()
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[HangingReceiver]:
    r = HangingReceiver()
    try:
        yield r
    finally:
        r.close()


def inbox(srv: ServerProcess, user: str) -> list[str]:
    with srv.subscriber(user) as sub:
        r = sub.get("/api/notifications")
        assert r.status_code == 200, r.text
        return [str(i["id"]) for i in r.json()["items"]]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_hanging_receiver_does_not_delay_an_escalation_step(
        backend: str, tmp_path: Path, receiver: HangingReceiver) -> None:
    clock = Clock(tmp_path / "clock")
    a, b = "a" + uuid.uuid4().hex[:8], "b" + uuid.uuid4().hex[:8]
    with served(backend, tmp_path, extra=[*FAST, *clock.flags, "--webhook-allow-private"]
                ) as srv, srv.publisher() as pub:
        assert pub.put("/api/webhook-targets/slow", json={
            "url": receiver.url, "format": "generic"}).status_code == 200
        assert pub.put("/api/escalation-policies/p", json={"steps": [
            {"targets": [a], "webhooks": ["slow"], "waitSeconds": 30,
             "skipIfNobodyActive": False},
            {"targets": [b], "waitSeconds": 30, "skipIfNobodyActive": False}]}
        ).status_code == 201
        r = pub.post("/api/notifications", json={"escalation": "p", "type": "alert",
                                                 "title": "Disk full"})
        assert r.status_code == 201, r.text
        # step 1 notified a and wrote the post: the scheduler took it, it hangs
        assert receiver.arrived.wait(20), "the step's post never reached the receiver"
        assert inbox(srv, a) and not inbox(srv, b)
        clock.advance(30)  # step 2 is due now, while the post still hangs
        wait_until(lambda: inbox(srv, b), HANG_S - 1,
                   "step 2 to notify b while the receiver still hangs")
        assert not receiver.answered.is_set(), (
            "step 2 ran only after the hanging post was answered")
