"""``tocsin.outbound``: the one rule for requests to addresses clients give (issue 21,
item 4). Every encoding of a non-public address is refused before a connection, a
name is judged by what it resolves to when connecting, the connection goes to the
address that was checked, and a reply is read only so far. Every connection a test
could cause is to a loopback listener of its own."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

import httpx
import pytest

from tests.support.listener import ENCODINGS, CountingListener, loopback_names
from tests.support.wait import wait_until
from tocsin.outbound import MAX_REPLY_BYTES, LocalService, Refused, Rules, check_url, client
from tocsin.outbound.address import legacy_ipv4
from tocsin.outbound.connect import GuardedBackend

LIMITS = httpx.Limits(max_connections=4, max_keepalive_connections=0)

OTHER_REFUSED = ["https://10.1.2.3/", "https://192.168.1.1/", "https://172.16.0.1/",
                 "https://169.254.169.254/latest/meta-data", "https://100.64.0.1/",
                 "https://224.0.0.1/", "https://240.0.0.1/", "https://255.255.255.255/",
                 "https://[fe80::1]/", "https://[fc00::1]/", "https://[fec0::1]/",
                 "https://[ff02::1]/", "https://[64:ff9b:1::a00:1]/", "https://[::ffff:10.0.0.1]/",
                 "https://0xa9fea9fe/", "https://printer.local/", "https://db.internal/",
                 "https://router.lan/", "https://nas.home.arpa/", "https://0x08080808/",
                 "https://u:p@push.example.net/", "ftp://push.example.net/", "https:///x",
                 "https://push.example.net:99999/", "https://a%2eb.example/"]
ALLOWED = ["https://fcm.googleapis.com/fcm/send/x", "https://updates.push.services.mozilla.com/w",
           "https://push.example.net:8443/x?y=1", "https://8.8.8.8/x",
           "https://[2a00:1450:4001:829::200e]/x", "https://[64:ff9b::808:808]/x",
           "https://bücher.example/x"]


@pytest.mark.parametrize("url", ENCODINGS + OTHER_REFUSED)
def test_every_encoding_of_a_non_public_address_is_refused(url: str) -> None:
    with pytest.raises(Refused):
        check_url(url.format(p=9), Rules())


@pytest.mark.parametrize("url", ALLOWED)
def test_public_https_urls_pass(url: str) -> None:
    assert check_url(url, Rules()).scheme == "https"


def test_loopback_rules() -> None:
    insecure = Rules(allow_loopback=True)
    for url in ("http://127.0.0.1:9/x", "https://[::1]:9/x", "http://localhost:9/x"):
        check_url(url, insecure)
    with pytest.raises(Refused):
        check_url("https://10.0.0.1/x", insecure)  # loopback only, not private
    with pytest.raises(Refused):
        check_url("http://push.example.net/x", insecure)  # http only to loopback
    demo = Rules(local=(LocalService(8000, "/demo/push-service/"),))
    check_url("http://127.0.0.1:8000/demo/push-service/abc", demo)
    check_url("http://localhost:8000/demo/push-service/abc", demo)
    for url in ("http://127.0.0.1:8000/internal-admin/reset",
                "http://127.0.0.1:8001/demo/push-service/abc",
                "http://127.0.0.1:8000/demo/push-service/%2e%2e/%2e%2e/api/x",
                "http://127.0.0.1:8000/demo/push-service/../../api/x",
                "http://10.0.0.1:8000/demo/push-service/abc"):
        with pytest.raises(Refused):
            check_url(url, demo)


@pytest.mark.parametrize("text", ["0x7f000001", "2130706433", "127.1", "0x7f.1", "0",
                                  "0177.0.0.1", "017700000001", "1.2.3", "0xff.0xffffff",
                                  "255.255.255.255", "1.2.3.256", "1.2.65536", "0x", "08",
                                  "1..2", "a.b.c.d", "1.2.3.4.5", "0x1g", "4294967296"])
def test_legacy_forms_read_as_the_c_library_reads_them(text: str) -> None:
    try:
        theirs: ipaddress.IPv4Address | None = ipaddress.IPv4Address(socket.inet_aton(text))
    except OSError:
        theirs = None
    if text == "0x":  # WHATWG reads an empty hex part as 0; refusing more is safe
        assert legacy_ipv4(text) == ipaddress.IPv4Address(0)
        return
    assert legacy_ipv4(text) == theirs


# -- connections ---------------------------------------------------------------------

async def test_no_encoding_reaches_a_listener() -> None:
    with CountingListener() as listener:
        async with client(Rules(), 5, LIMITS) as c:
            for url in ENCODINGS:  # httpx itself cannot parse some: refused as well
                with pytest.raises((Refused, httpx.InvalidURL)):
                    await c.post(url.format(p=listener.port), content=b"x")
        assert listener.connections == 0
        async with client(Rules(allow_loopback=True), 5, LIMITS) as c:  # control
            r = await c.post(f"http://127.0.0.1:{listener.port}/x", content=b"x")
        assert r.status_code == 201 and listener.connections == 1


async def test_a_name_that_resolves_to_loopback_is_refused_when_connecting() -> None:
    with CountingListener() as listener:
        backend = GuardedBackend(Rules())
        with pytest.raises(Refused, match="loopback"):  # /etc/hosts, through the resolver
            await backend.connect_tcp("localhost", listener.port, timeout=5)
        names = loopback_names()
        if names:  # the whole client, with a name check_url cannot judge
            async with client(Rules(), 5, LIMITS) as c:
                with pytest.raises(Refused, match="resolves to 127"):
                    await c.post(f"https://{names[0]}:{listener.port}/x", content=b"x")
        assert listener.connections == 0


async def test_the_connection_goes_to_the_address_that_was_checked(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A name that answers 127.0.0.1 when checked and 127.0.0.2 on any later lookup
    (DNS rebinding, kept on loopback): the listener on 127.0.0.1 gets the request, so
    the name was looked up once and the checked address connected to."""
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo
    lookups: list[str] = []

    async def fake(host: Any, port: Any, *args: Any, **kw: Any) -> Any:
        if host == "rebind.example.com":
            lookups.append(host)
            host = "127.0.0.1" if len(lookups) == 1 else "127.0.0.2"
        return await real(host, port, *args, **kw)

    monkeypatch.setattr(loop, "getaddrinfo", fake)
    with CountingListener() as listener:
        rules = Rules(local=(LocalService(listener.port, "/push/"),))
        async with client(rules, 5, LIMITS) as c:
            with pytest.raises(Refused):  # a public name is not a local service
                await c.post(f"http://rebind.example.com:{listener.port}/other", content=b"")
            r = await c.post(f"http://127.0.0.1:{listener.port}/push/1", content=b"x")
            assert r.status_code == 201
        with pytest.raises(Refused):  # nor a connection: only a host naming loopback is
            await GuardedBackend(rules).connect_tcp("rebind.example.com", listener.port,
                                                    timeout=5)
        backend = GuardedBackend(Rules(allow_loopback=True))
        lookups.clear()
        stream = await backend.connect_tcp("rebind.example.com", listener.port, timeout=5)
        await stream.aclose()
        assert lookups == ["rebind.example.com"]
        wait_until(lambda: listener.connections == 2, within=10)  # counted by its thread


async def test_a_reply_is_read_up_to_64_kib_and_redirects_are_not_followed() -> None:
    big = b"HTTP/1.1 400 Bad\r\nContent-Length: 10000000\r\n\r\n" + b"x" * 10_000_000
    with CountingListener(reply=big) as listener:
        async with client(Rules(allow_loopback=True), 10, LIMITS) as c:
            r = await c.post(f"http://127.0.0.1:{listener.port}/x", content=b"x")
        assert r.status_code == 400 and len(r.content) == MAX_REPLY_BYTES
    moved = (b"HTTP/1.1 307 Moved\r\nLocation: http://127.0.0.1:1/admin\r\n"
             b"Content-Length: 0\r\n\r\n")
    with CountingListener(reply=moved) as listener:
        async with client(Rules(allow_loopback=True), 10, LIMITS) as c:
            r = await c.post(f"http://127.0.0.1:{listener.port}/x", content=b"x")
        assert r.status_code == 307 and listener.connections == 1
