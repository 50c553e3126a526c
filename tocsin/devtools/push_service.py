"""A local push service: what Firefox's or Chrome's push service does with a Web Push
message, in one small ASGI app, for the tests and the demo (no browser vendor, no
internet). It checks what a real one checks and decrypts what a browser would.

    service = LocalPushService()
    sub = service.create_device("http://127.0.0.1:9000/demo/push-service", "laptop")
    # sub is PushSubscription.toJSON(): register it with POST /api/push-subscriptions
    ...
    service.received[-1]["payload"]   # the decrypted JSON the service worker would get

Each ``POST /{device}``: the VAPID ``Authorization: vapid t=<JWT>, k=<key>`` is
verified (401 without one; 403 for a bad signature, an ``aud`` other than this
service's origin, an ``exp`` past or more than 24 h ahead, or a ``k`` other than the
expected server key when one is set), then the ``aes128gcm`` body is decrypted with
the device's keys (400 if it cannot be) and recorded in :attr:`received` with the
status answered: 201, or what :meth:`set_response` queued (404, 410, 429 with
``Retry-After``, ...).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from typing import Any
from urllib.parse import urlsplit

import http_ece
import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tocsin.channels.push.vapid import b64url, load_public_key, public_raw

MAX_BODY = 4096
MAX_EXP_AHEAD_S = 24 * 3600


class _Device:
    __slots__ = ("auth", "key", "label", "origin", "responses")

    def __init__(self, origin: str, label: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = secrets.token_bytes(16)
        self.origin = origin
        self.label = label
        self.responses: deque[tuple[int, str | None]] = deque()


class LocalPushService:
    def __init__(self, expected_key: str | None = None, keep: int = 1000) -> None:
        self.expected_key = expected_key
        """The server's VAPID public key (base64url) every message must carry; any
        valid key when ``None``."""
        self.received: deque[dict[str, Any]] = deque(maxlen=keep)
        self.devices: dict[str, _Device] = {}
        self._lock = threading.Lock()
        self.app = Starlette(routes=[Route("/{device}", self._receive, methods=["POST"])])

    def create_device(self, base_url: str, label: str = "") -> dict[str, Any]:
        """A new device: its subscription JSON ``{endpoint, keys: {p256dh, auth}}``.
        ``base_url`` is where :attr:`app` is reachable (its origin is the ``aud`` the
        VAPID JWT must name)."""
        parts = urlsplit(base_url)
        name = secrets.token_urlsafe(12)
        device = _Device(f"{parts.scheme}://{parts.netloc}", label)
        with self._lock:
            self.devices[name] = device
        return {"endpoint": f"{base_url.rstrip('/')}/{name}", "expirationTime": None,
                "keys": {"p256dh": b64url(public_raw(device.key)), "auth": b64url(device.auth)}}

    def set_response(self, device: str, status: int, retry_after: int | str | None = None,
                     times: int = 1) -> None:
        """Answer the next ``times`` messages to ``device`` (its name, or its
        endpoint) with ``status`` (and ``Retry-After``) instead of 201."""
        name = device.rstrip("/").rsplit("/", 1)[-1]
        with self._lock:
            for _ in range(times):
                self.devices[name].responses.append(
                    (status, None if retry_after is None else str(retry_after)))

    def messages(self, device: str | None = None, status: int | None = None
                 ) -> list[dict[str, Any]]:
        """What was received (for ``device``: a name or an endpoint; with ``status``)."""
        name = None if device is None else device.rstrip("/").rsplit("/", 1)[-1]
        return [m for m in list(self.received) if (name is None or m["device"] == name)
                and (status is None or m["status"] == status)]

    async def _receive(self, request: Request) -> Response:
        name = request.path_params["device"]
        device = self.devices.get(name)
        if device is None:
            return Response("no such subscription", 404)
        body = await request.body()
        claims, payload, refusal = self._open(request, body, device)
        if refusal is not None:
            status, retry_after = refusal.status_code, None
        else:
            with self._lock:
                status, retry_after = (device.responses.popleft() if device.responses
                                       else (201, None))
        self.received.append({
            "device": name, "label": device.label, "status": status, "payload": payload,
            "headers": {k: request.headers.get(k) for k in ("TTL", "Urgency", "Topic")},
            "vapid": claims, "size": len(body), "at": int(time.time() * 1000)})
        if refusal is not None:
            return refusal
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        if status == 201:
            headers["Location"] = f"{device.origin}/messages/{secrets.token_urlsafe(8)}"
        return Response(b"", status, headers)

    def _open(self, request: Request, body: bytes, device: _Device
              ) -> tuple[dict[str, Any], Any, Response | None]:
        """``(VAPID claims, decrypted payload, refusal or None)``."""
        if len(body) > MAX_BODY:
            return {}, None, Response("payload too large", 413)
        claims, refusal = self._verify(request.headers.get("authorization", ""), device)
        if refusal is not None:
            return claims, None, refusal
        if request.headers.get("content-encoding", "").lower() != "aes128gcm":
            return claims, None, Response("Content-Encoding must be aes128gcm", 400)
        if not request.headers.get("ttl", "").isdigit():
            return claims, None, Response("TTL header required", 400)
        try:
            plain = http_ece.decrypt(body, private_key=device.key, auth_secret=device.auth,
                                     version="aes128gcm")
        except Exception as exc:  # http_ece raises several kinds for a bad body
            return claims, None, Response(f"cannot decrypt: {exc!r}", 400)
        try:
            return claims, orjson.loads(plain), None
        except orjson.JSONDecodeError:
            return claims, bytes(plain).decode(errors="replace"), None

    def _verify(self, header: str, device: _Device
                ) -> tuple[dict[str, Any], Response | None]:
        scheme, _, params = header.partition(" ")
        if scheme.lower() != "vapid":
            return {}, Response("VAPID authorization required", 401)
        fields = dict(p.strip().partition("=")[::2] for p in params.split(","))
        token, key_text = fields.get("t", ""), fields.get("k", "")
        try:
            key = load_public_key(key_text)
        except ValueError:
            return {}, Response("k= is not a P-256 public key", 401)
        if self.expected_key is not None and key_text.rstrip("=") != self.expected_key:
            return {}, Response("not the application server key of this subscription", 403)
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=["ES256"], audience=device.origin,
                options={"require": ["aud", "exp", "sub"]})
        except jwt.InvalidTokenError as exc:
            return {}, Response(f"invalid VAPID JWT: {exc}", 403)
        if int(claims["exp"]) > time.time() + MAX_EXP_AHEAD_S:
            return claims, Response("VAPID exp more than 24 hours ahead", 403)
        sub = str(claims["sub"])
        if not (sub.startswith("mailto:") or sub.startswith("https:")):
            return claims, Response("VAPID sub must be a mailto: or https: URI", 403)
        return claims, None
