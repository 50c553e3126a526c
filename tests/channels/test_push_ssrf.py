"""SSRF through push endpoints, against a real ``tocsin serve`` without
``--push-allow-insecure`` (issue 21, item 4): every encoding of a loopback address
is refused at registration, a name that resolves to loopback (through /etc/hosts) is
refused when the push is sent, and nothing ever reaches a listener on 127.0.0.1."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.channels.pushsvc import PushServiceThread
from tests.support.listener import ENCODINGS, CountingListener, loopback_names
from tests.support.server import ServerProcess, start_server
from tests.support.wait import wait_until

FLAGS = ["--presence-interval", "500ms", "--timer-poll", "100ms", "--rate-reads", "off"]


def refused_count(srv: ServerProcess) -> float:
    text = httpx.get(srv.url + "/metrics", timeout=5).text
    m = re.search(r'^tocsin_push_sent_total\{result="refused"\} (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server(tmp_path_factory.mktemp("ssrf"), extra=FLAGS)
    yield server
    server.stop()


def test_every_encoding_of_loopback_is_refused_at_registration(srv: ServerProcess) -> None:
    device = PushServiceThread().device()  # real keys; only the endpoint changes
    user = "u" + uuid.uuid4().hex[:10]
    with CountingListener() as listener, srv.subscriber(user) as sub:
        for url in ENCODINGS:
            endpoint = url.format(p=listener.port) + "push/x"
            r = sub.post("/api/push-subscriptions", json={**device, "endpoint": endpoint})
            assert r.status_code == 400, (endpoint, r.text)
            assert r.json()["error"]["field"] == "endpoint", r.text
        assert sub.get("/api/push-subscriptions").json()["items"] == []
        assert listener.connections == 0


def test_a_name_resolving_to_loopback_is_refused_when_sending(srv: ServerProcess) -> None:
    names = loopback_names()
    if not names:
        pytest.skip("no name in /etc/hosts resolves to loopback only")
    device = PushServiceThread().device()
    user = "u" + uuid.uuid4().hex[:10]
    before = refused_count(srv)
    with CountingListener() as listener:
        endpoint = f"https://{names[0]}:{listener.port}/push/x"
        with srv.subscriber(user) as sub:  # a name: only its addresses can tell
            r = sub.post("/api/push-subscriptions", json={**device, "endpoint": endpoint})
            assert r.status_code == 201, r.text
        with srv.publisher() as pub:
            r = pub.post("/api/notifications", json={
                "recipients": [user], "type": "alert", "title": "t", "priority": "high"})
            assert r.status_code == 201, r.text
        # the push timer ran: refused (counted), or it reached the listener
        wait_until(lambda: refused_count(srv) > before or listener.connections, within=30)
        assert listener.connections == 0
    assert "resolves to 127" in srv.log()  # the warning names the address, not the URL
