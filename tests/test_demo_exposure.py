"""``tocsin demo`` on a real process (issue 21, item 5): its local push service is
the only insecure push endpoint it accepts (anyone can mint a demo token), and on a
non-loopback address it warns loudly at start (``demo`` and ``serve --demo``)."""

from __future__ import annotations

import ipaddress
import socket
import uuid
from pathlib import Path

import httpx
import pytest

from tests.e2e.demo_server import start_demo
from tests.support.listener import CountingListener
from tests.support.server import start_server
from tests.support.wait import wait_until
from tocsin.devtools.push_service import LocalPushService
from tocsin.outbound.address import names_loopback

WARNING = "WARNING: the demo is listening on"


def test_the_demo_accepts_only_its_own_push_service(tmp_path: Path) -> None:
    demo = start_demo(tmp_path)
    try:
        port = demo.url.rsplit(":", 1)[1]
        token = httpx.get(f"{demo.url}/demo/api/token?user=alice", timeout=5).json()["token"]
        device = LocalPushService().create_device("http://127.0.0.1:9/x")  # real keys
        auth = {"Authorization": f"Bearer {token}"}
        with CountingListener() as listener, httpx.Client(base_url=demo.url, headers=auth,
                                                          timeout=10) as alice:
            for endpoint in (f"http://127.0.0.1:{listener.port}/internal-admin/reset",
                             f"https://127.0.0.1:{listener.port}/demo/push-service/x",
                             f"http://127.0.0.1:{port}/internal-admin/reset",
                             f"http://127.0.0.1:{port}/demo/push-service/../../api/x",
                             f"http://127.0.0.1:{port}/demo/push-service/%2e%2e/x",
                             f"http://localhost:{listener.port}/demo/push-service/x",
                             "http://10.0.0.1/demo/push-service/x"):
                r = alice.post("/api/push-subscriptions", json={**device, "endpoint": endpoint})
                assert r.status_code == 400, (endpoint, r.text)
                assert r.json()["error"]["field"] == "endpoint"
            # the demo's own push service still works: a device, a message, delivered
            r = alice.post("/demo/api/reach", json={"user": "alice"})
            assert r.status_code == 200, r.text
            r = alice.post("/demo/api/send", json={
                "to": ["alice"], "title": "t" + uuid.uuid4().hex[:6], "priority": "high"})
            assert r.status_code == 201, r.text
            pushed = wait_until(lambda: [p for p in httpx.get(
                f"{demo.url}/demo/api/sent", timeout=5).json()["push"]
                if p["status"] == 201], within=60)
            assert pushed[0]["user"] == "alice"
            assert listener.connections == 0
        assert WARNING not in demo.log()  # on loopback: no warning
    finally:
        demo.stop()


def _name_for_loopback() -> str | None:
    """A host name that resolves to loopback only but does not say so itself (not
    ``localhost``): this machine's name often is one (/etc/hosts)."""
    for name in (socket.gethostname(), "ip6-localhost", "localhost.localdomain"):
        if not name or names_loopback(name):
            continue
        try:
            infos = socket.getaddrinfo(name, 443, type=socket.SOCK_STREAM)
        except OSError:
            continue
        if infos and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos):
            return name
    return None


def test_a_name_resolving_to_loopback_does_not_reach_the_demo_port(tmp_path: Path) -> None:
    """The local push service is allowed only to a host that names loopback itself
    (the path is checked for those): before, ``https://<this machine's name>:<demo
    port>/api/...`` was registered (names are judged at send time) and then connected
    to, any path, because the send-time check allowed every loopback address on the
    demo's port."""
    name = _name_for_loopback()
    if name is None:
        pytest.skip("no host name here resolves to loopback only")
    demo = start_demo(tmp_path)
    try:
        port = demo.url.rsplit(":", 1)[1]
        token = httpx.get(f"{demo.url}/demo/api/token?user=alice", timeout=5).json()["token"]
        device = LocalPushService().create_device("http://127.0.0.1:9/x")  # real keys
        endpoint = f"https://{name}:{port}/api/notifications"
        with httpx.Client(base_url=demo.url, headers={"Authorization": f"Bearer {token}"},
                          timeout=10) as alice:
            r = alice.post("/api/push-subscriptions", json={**device, "endpoint": endpoint})
            assert r.status_code == 201, r.text  # a name: judged when a message is sent
            r = alice.post("/demo/api/send", json={
                "to": ["alice"], "title": "t" + uuid.uuid4().hex[:6], "priority": "urgent"})
            assert r.status_code == 201, r.text
        wait_until(lambda: f"https://{name.lower()}:{port}: not sent" in demo.log(), within=60)
        assert "Invalid HTTP request" not in demo.log()  # before: a TLS hello reached it
    finally:
        demo.stop()


def test_the_demo_warns_on_a_public_address(tmp_path: Path) -> None:
    (tmp_path / "demo").mkdir()
    demo = start_demo(tmp_path / "demo", extra=("--host", "0.0.0.0"))  # the last --host wins
    try:
        assert f"{WARNING} 0.0.0.0" in demo.log(), demo.log()
    finally:
        demo.stop()
    (tmp_path / "serve").mkdir()
    srv = start_server(tmp_path / "serve", extra=["--demo", "--host", "0.0.0.0"])
    try:
        assert f"{WARNING} 0.0.0.0" in srv.log(), srv.log()
    finally:
        srv.stop()
