"""Web Push pieces on their own: VAPID keys and JWTs, the endpoint and key checks,
what each push service answer means, the payload's size bound, the local push
service's own checks, and the routes of an in-process app without
``--push-allow-insecure``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization

from tests.support.inprocess import InProcess, in_process
from tocsin.channels.push import webpush
from tocsin.channels.push.service import MAX_PAYLOAD_BYTES, fit, ttl_of
from tocsin.channels.push.validate import check_endpoint, check_keys
from tocsin.channels.push.vapid import (
    Vapid,
    b64url,
    generate,
    load_private_key,
    load_public_key,
    private_text,
    public_raw,
    public_text,
)
from tocsin.devtools.push_service import LocalPushService
from tocsin.errors import TocsinError
from tocsin.outbound import Rules

BASE = "http://push.test"


def test_a_key_given_as_base64url_or_pem_is_the_same_key() -> None:
    key = generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    sec1 = key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption()).decode()
    for text in (private_text(key), private_text(key) + "=", pem, sec1):
        assert public_text(load_private_key(text)) == public_text(key)
    assert len(public_raw(key)) == 65 and public_raw(key)[0] == 4
    for bad, why in [("c2hvcnQ", "32 bytes"), ("not base64!", "base64url"),
                     (b64url(b"\xff" * 32), "out of range"),
                     ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----", "PEM")]:
        with pytest.raises(ValueError, match=why):
            load_private_key(bad)


def test_the_vapid_header_is_a_valid_es256_jwt_reused_while_fresh() -> None:
    key = generate()
    v = Vapid(key, "mailto:ops@example.com")
    now = int(time.time())
    header = v.authorization("https://push.example.net", now)
    assert header == v.authorization("https://push.example.net", now + 60)  # cached
    t = header.removeprefix("vapid t=").split(", k=")[0]
    assert header.endswith(", k=" + public_text(key))
    claims = jwt.decode(t, load_public_key(public_text(key)), algorithms=["ES256"],
                        audience="https://push.example.net")
    assert claims["sub"] == "mailto:ops@example.com"
    assert now < claims["exp"] <= now + 24 * 3600
    assert v.authorization("https://push.example.net", claims["exp"] - 10) != header  # renewed
    assert v.authorization("https://other.example.net", now) != header  # per audience


@pytest.mark.parametrize(("endpoint", "insecure", "ok"), [
    ("https://fcm.googleapis.com/fcm/send/x", False, True),
    ("https://push.example.net:8443/x?y=1", False, True),
    ("http://push.example.net/x", False, False),
    ("http://push.example.net/x", True, False),  # the flag is for loopback only
    ("http://127.0.0.1:9/x", False, False),
    ("http://127.0.0.1:9/x", True, True),
    ("https://127.0.0.2/x", True, True),
    ("http://localhost/x", True, True),
    ("https://localhost/x", False, False),
    ("https://a.localhost/x", False, False),
    ("https://printer.local/x", False, False),
    ("https://10.0.0.1/x", True, False),
    ("https://172.16.3.4/x", False, False),
    ("https://100.64.0.1/x", False, False),
    ("https://[fd00::1]/x", False, False),
    ("https://[::ffff:127.0.0.1]/x", False, False),
    ("https://u@push.example.net/x", False, False),
    ("https://push.example.net:99999/x", False, False),
    ("javascript:alert(1)", False, False),
    ("https:///x", False, False),
    ("https://push.example.net/\x00", False, False),
])
def test_endpoints(endpoint: str, insecure: bool, ok: bool) -> None:
    if ok:
        assert check_endpoint(endpoint, Rules(allow_loopback=insecure)) == endpoint
    else:
        with pytest.raises(TocsinError) as err:
            check_endpoint(endpoint, Rules(allow_loopback=insecure))
        assert err.value.field == "endpoint"


def test_keys_are_canonicalised_and_checked() -> None:
    service = LocalPushService()
    keys = service.create_device(BASE)["keys"]
    assert check_keys(keys["p256dh"] + "=", keys["auth"] + "==") == (keys["p256dh"], keys["auth"])
    with pytest.raises(TocsinError) as err:
        check_keys(keys["p256dh"][:-1] + "+", keys["auth"])  # base64, not base64url
    assert err.value.field == "keys.p256dh"
    with pytest.raises(TocsinError) as err:
        check_keys(keys["p256dh"], b64url(b"x" * 17))
    assert err.value.field == "keys.auth"


@pytest.mark.parametrize(("status", "retry_after", "outcome", "wait"), [
    (201, None, "sent", None), (200, None, "sent", None), (202, None, "sent", None),
    (404, None, "gone", None), (410, None, "gone", None),
    (429, "3", "retry", 3000), (503, "120", "retry", 120_000),
    (429, None, "error", None), (503, None, "error", None), (503, "soon", "error", None),
    (400, None, "rejected", None), (401, None, "rejected", None),
    (403, None, "rejected", None), (413, None, "rejected", None),
    (500, None, "error", None), (502, None, "error", None),
])
def test_what_an_answer_means(status: int, retry_after: str | None, outcome: str,
                              wait: int | None) -> None:
    a = webpush.classify(status, retry_after)
    assert (a.outcome, a.retry_after_ms) == (outcome, wait)


def test_retry_after_as_an_http_date() -> None:
    assert webpush.retry_after_ms("Wed, 21 Oct 2037 07:28:00 GMT",
                                  now_s=2139722870.0) == 10_000
    assert webpush.retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT") == 0  # past: now


def test_the_payload_fits_in_3_kb() -> None:
    msg = {"id": "n1", "title": "t" * 200, "body": "é\"" * 5000, "url": "https://x.test/"
           + "a" * 2000, "priority": "high", "readToken": "r" * 300}
    raw = fit(dict(msg), MAX_PAYLOAD_BYTES)
    got = orjson.loads(raw)
    assert MAX_PAYLOAD_BYTES - 8 < len(raw) <= MAX_PAYLOAD_BYTES  # no more cut than needed
    assert got["body"].endswith("…") and got["url"] == msg["url"]  # the body went first
    huge_url = fit({**msg, "body": "", "url": "https://x.test/" + "a" * 4000},
                   MAX_PAYLOAD_BYTES)
    assert len(huge_url) <= MAX_PAYLOAD_BYTES and orjson.loads(huge_url)["url"] is None
    small = {"id": "n", "title": "hi", "body": "there"}
    assert orjson.loads(fit(dict(small), MAX_PAYLOAD_BYTES)) == small


def test_ttl_is_four_weeks_from_creation_or_until_expiry() -> None:
    now = 1_800_000_000_000
    assert ttl_of({"timestamp": now}, now) == 28 * 86400
    assert ttl_of({"timestamp": now - 86400_000}, now) == 27 * 86400
    assert ttl_of({"timestamp": now, "expiresAt": now + 60_000}, now) == 60
    assert ttl_of({"timestamp": now - 29 * 86400_000}, now) < 0


# -- the local push service's own checks -----------------------------------------------

async def post(service: LocalPushService, url: str, body: bytes,
               headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app),
                                 base_url="http://push.test") as c:
        return await c.post(url.removeprefix("http://push.test"), content=body,
                            headers=headers)


def message(sub: dict[str, Any], vapid: Vapid, payload: bytes = b'{"id": "n1"}'
            ) -> tuple[bytes, dict[str, str]]:
    body = webpush.encrypt(payload, sub["keys"]["p256dh"], sub["keys"]["auth"])
    return body, webpush.headers(vapid, sub["endpoint"], 60, "urgent", "n1")


async def test_the_local_push_service_verifies_and_decrypts() -> None:
    server = Vapid(generate(), "mailto:ops@example.com")
    service = LocalPushService(expected_key=server.public_key)
    sub = service.create_device(BASE, "phone")
    body, headers = message(sub, server)
    r = await post(service, sub["endpoint"], body, headers)
    assert r.status_code == 201 and r.headers["location"]
    got = service.received[-1]
    assert got["payload"] == {"id": "n1"} and got["label"] == "phone"
    assert got["headers"] == {"TTL": "60", "Urgency": "high", "Topic": "n1"}
    # the next answers, as a real service gives them
    service.set_response(sub["endpoint"], 429, retry_after=7)
    r = await post(service, sub["endpoint"], body, headers)
    assert r.status_code == 429 and r.headers["retry-after"] == "7"
    service.set_response(sub["endpoint"], 410)
    assert (await post(service, sub["endpoint"], body, headers)).status_code == 410
    assert (await post(service, sub["endpoint"], body, headers)).status_code == 201
    assert (await post(service, BASE + "/nobody", body, headers)).status_code == 404


async def test_the_local_push_service_refuses_bad_vapid() -> None:
    server = Vapid(generate(), "mailto:ops@example.com")
    service = LocalPushService(expected_key=server.public_key)
    sub = service.create_device(BASE)
    body, headers = message(sub, server)
    stranger = Vapid(generate(), "mailto:x@example.com")
    now = int(time.time())

    def signed(claims: dict[str, Any], by: Vapid = server) -> str:
        return (f"vapid t={jwt.encode(claims, by.key, algorithm='ES256')}, "
                f"k={server.public_key}")

    good = {"aud": "http://push.test", "exp": now + 600, "sub": "mailto:ops@example.com"}
    cases = [
        ({k: v for k, v in headers.items() if k != "Authorization"}, 401),
        ({**headers, "Authorization": "WebPush abc"}, 401),
        ({**headers, "Authorization": f"vapid t=x, k={server.public_key[:-3]}"}, 401),
        ({**headers, "Authorization": stranger.authorization("http://push.test")}, 403),
        ({**headers, "Authorization": signed(good, stranger)}, 403),  # forged signature
        ({**headers, "Authorization": signed({**good, "aud": "http://other.test"})}, 403),
        ({**headers, "Authorization": signed({**good, "exp": now - 10})}, 403),
        ({**headers, "Authorization": signed({**good, "exp": now + 25 * 3600})}, 403),
        ({**headers, "Authorization": signed({**good, "sub": "ops"})}, 403),
        ({**headers, "Content-Encoding": "aesgcm"}, 400),
        ({k: v for k, v in headers.items() if k != "TTL"}, 400),
    ]
    for h, status in cases:
        assert (await post(service, sub["endpoint"], body, h)).status_code == status, h
    other = service.create_device(BASE)  # encrypted for another device
    assert (await post(service, sub["endpoint"], message(other, server)[0],
                       headers)).status_code == 400
    assert (await post(service, sub["endpoint"], body, headers)).status_code == 201


# -- routes, in process, without --push-allow-insecure --------------------------------

@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[InProcess]:
    async with in_process(f"sqlite+aiosqlite:///{tmp_path / 'db'}") as a:
        yield a


async def test_without_the_insecure_flag_loopback_is_refused(app: InProcess) -> None:
    sub = LocalPushService().create_device("http://127.0.0.1:9/push")
    async with app.subscriber("alice") as c:
        r = await c.post("/api/push-subscriptions", json=sub)
        assert r.status_code == 400 and r.json()["error"]["field"] == "endpoint"
        r = await c.post("/api/push-subscriptions",
                         json={**sub, "endpoint": "https://push.example.net/a"})
        assert r.status_code == 201
        assert (await c.delete("/api/push-subscriptions/" + "0" * 28)).status_code == 404


async def test_open_routes_need_no_credentials(app: InProcess) -> None:
    async with app.client() as c:
        r = await c.get("/api/push/vapid-public-key")
        assert r.status_code == 200 and len(r.json()["publicKey"]) == 87
        # a stale cookie does not stand in the way of either
        r = await c.post("/api/push/read", json={"token": "x.y.z"},
                         headers={"Cookie": "tocsin_token=expired"})
        assert r.status_code == 401
        assert (await c.post("/api/push/read", json={})).status_code == 400
        assert (await c.post("/api/push/read", content=b"token=x",
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
                ).status_code == 415
        assert (await c.get("/api/push-subscriptions")).status_code == 401
