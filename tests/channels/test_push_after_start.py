"""Issue 21 #13: an urgent push right after a start goes out at once.

A single node (``memory://``) knows presence from its first moment, so a push timer
has nothing to wait for; before, it waited for presence ("presence not known yet",
2 s at a time, up to 8 times): the first urgent push went out ~14 s after the
publish. Against a real ``tocsin serve`` with the default ``--presence-interval``
(10 s) and the local push service."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx

from tests.channels.pushsvc import PushServiceThread
from tests.support.server import start_server


def test_a_single_nodes_first_urgent_push_goes_out_promptly(tmp_path: Path) -> None:
    push = PushServiceThread().start()
    srv = start_server(tmp_path, extra=["--push-allow-insecure", "--timer-poll", "100ms"])
    try:
        push.service.expected_key = httpx.get(
            srv.url + "/api/push/vapid-public-key", timeout=5).json()["publicKey"]
        user = "u" + uuid.uuid4().hex[:10]
        dev = push.device(user)
        with srv.subscriber(user) as sub:
            assert sub.post("/api/push-subscriptions", json=dev).status_code == 201
        with srv.publisher() as pub:
            published = time.monotonic()
            r = pub.post("/api/notifications", json={
                "recipients": [user], "type": "alert", "title": "DB down",
                "priority": "urgent"})
            assert r.status_code == 201, r.text
        (msg,) = push.wait(dev["endpoint"], within=20)
        took = time.monotonic() - published
        print(f"first urgent push {took:.2f} s after the publish")
        assert msg["payload"]["title"] == "DB down"
        assert took < 5, f"the first push took {took:.1f} s"  # before: ~14 s
    finally:
        srv.stop()
        push.stop()
