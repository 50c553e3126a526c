"""Standard Webhooks signing (https://www.standardwebhooks.com): the three headers a
receiver verifies with any Standard Webhooks library. Used by every signed outbound
request (the webhook channel's targets, event webhooks).

The signature is ``v1,<base64 HMAC-SHA256>`` of ``{id}.{timestamp}.{body}`` under the
secret's bytes; the secret is written ``whsec_<base64>``."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64


def new_secret() -> str:
    """A fresh secret, ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(os.urandom(32)).decode("ascii")


def secret_bytes(secret: str) -> bytes:
    """The key of ``secret`` (``whsec_<base64>``, 24 to 64 bytes); ValueError otherwise."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a secret is written {SECRET_PREFIX}<base64>")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"a secret is written {SECRET_PREFIX}<base64>") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(f"a secret holds {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes")
    return key


def sign_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The ``webhook-id``, ``webhook-timestamp`` (seconds) and ``webhook-signature``
    headers of ``body`` sent as message ``msg_id`` at ``timestamp``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": "v1," + base64.b64encode(digest).decode("ascii")}
