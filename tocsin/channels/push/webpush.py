"""One Web Push message: the payload encrypted for a device (RFC 8291,
``aes128gcm``), the VAPID header (RFC 8292) and the push protocol headers (RFC 8030),
POSTed to the subscription's endpoint; and what the push service's answer means."""

from __future__ import annotations

import asyncio
import email.utils
import os
import time
from dataclasses import dataclass
from datetime import UTC
from typing import Literal
from urllib.parse import urlsplit

import http_ece
import httpx
from cryptography.hazmat.primitives.asymmetric import ec

from tocsin.channels.push.vapid import Vapid, unb64url
from tocsin.outbound import Refused

RECORD_SIZE = 4096
"""One aes128gcm record: a push service takes at most 4096 bytes of body."""
URGENCY = {"low": "low", "medium": "normal", "high": "high", "urgent": "high"}
"""Notification priority -> RFC 8030 ``Urgency``."""

SEND_DEADLINE_S = 15.0
"""One POST, connect to answer, well within the scheduler's 30 s lease (httpx's own
timeouts apply per phase: connect, write and read could add up past it)."""

Outcome = Literal["sent", "gone", "retry", "rejected", "refused", "error"]


@dataclass(frozen=True, slots=True)
class Answer:
    """What a push service's reply means for the message."""

    outcome: Outcome
    status: int
    retry_after_ms: int | None = None
    detail: str = ""


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url`` (the VAPID ``aud``)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def encrypt(plaintext: bytes, p256dh: str, auth: str) -> bytes:
    """``plaintext`` encrypted for the device whose keys are ``p256dh`` / ``auth``
    (base64url), with a fresh ephemeral key and salt (RFC 8291)."""
    return bytes(http_ece.encrypt(
        plaintext, salt=os.urandom(16), private_key=ec.generate_private_key(ec.SECP256R1()),
        dh=unb64url(p256dh), auth_secret=unb64url(auth), version="aes128gcm",
        rs=RECORD_SIZE))


def headers(vapid: Vapid, endpoint: str, ttl_s: int, priority: str, topic: str | None
            ) -> dict[str, str]:
    out = {"Authorization": vapid.authorization(origin(endpoint)),
           "TTL": str(max(0, ttl_s)), "Urgency": URGENCY.get(priority, "normal"),
           "Content-Encoding": "aes128gcm", "Content-Type": "application/octet-stream"}
    if topic:
        out["Topic"] = topic  # a resend of the same message replaces the pending one
    return out


async def send(client: httpx.AsyncClient, endpoint: str, body: bytes,
               hdrs: dict[str, str]) -> Answer:
    """POST one message; never raises for the push service's answer, the network, or
    an endpoint whose address the client's rules refuse (``refused``)."""
    try:
        async with asyncio.timeout(SEND_DEADLINE_S):
            r = await client.post(endpoint, content=body, headers=hdrs)
    except (Refused, httpx.InvalidURL) as exc:  # nothing sent: not an address Tocsin may reach
        return Answer("refused", 0, detail=str(exc))
    except (httpx.HTTPError, TimeoutError) as exc:
        return Answer("error", 0, detail=f"{type(exc).__name__}: {exc}")
    return classify(r.status_code, r.headers.get("retry-after"), r.text[:200])


def classify(status: int, retry_after: str | None, text: str = "") -> Answer:
    """RFC 8030 answers: 201 (and any 2xx) delivered; 404/410 the subscription is gone
    for good; 429 and 503 with ``Retry-After`` wait that long; other 4xx (400 bad
    request, 413 too large, 401/403 VAPID refused) will not get better by retrying;
    anything else (5xx) is transient."""
    if 200 <= status < 300:
        return Answer("sent", status)
    if status in (404, 410):
        return Answer("gone", status, detail=text)
    if status in (429, 503):
        wait = retry_after_ms(retry_after)
        if wait is not None:
            return Answer("retry", status, wait, text)
    if 400 <= status < 500 and status != 429:
        return Answer("rejected", status, detail=text)
    return Answer("error", status, detail=text)


def retry_after_ms(value: str | None, now_s: float | None = None) -> int | None:
    """``Retry-After`` as milliseconds from now: delta-seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value) * 1000
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": UTC by RFC 5322
        when = when.replace(tzinfo=UTC)
    now_s = time.time() if now_s is None else now_s
    return max(0, int((when.timestamp() - now_s) * 1000))
