"""Standard Webhooks signing (https://www.standardwebhooks.com/), shared by the chat
and webhook channel (``tocsin/channels/webhook/``) and the event webhooks: a request
to a target with a secret carries

- ``webhook-id``: the message's id, the same on every retry (receivers deduplicate);
- ``webhook-timestamp``: seconds since the epoch, when this attempt was signed;
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``,
  keyed by the secret's bytes.

A secret is written ``whsec_<base64>`` (what every Standard Webhooks library takes);
:func:`parse_secret` also accepts bare base64 of at least 24 bytes, and
:func:`new_secret` makes one. Pure: no I/O, a leaf of ``tocsin/outbound/``."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

PREFIX = "whsec_"
MIN_SECRET_BYTES = 24
"""A shorter key would make the HMAC guessable; the specification asks for 24 to 64
random bytes."""
MAX_SECRET_BYTES = 64


class BadSecret(ValueError):
    """The secret is not ``whsec_<base64>`` of 24 to 64 bytes."""


def new_secret() -> str:
    """A fresh secret in the ``whsec_`` form (32 random bytes)."""
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def parse_secret(secret: str) -> bytes:
    """The key bytes of ``whsec_<base64>`` (or bare base64); :class:`BadSecret` if
    it is not base64 of 24 to 64 bytes."""
    text = secret.removeprefix(PREFIX)
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadSecret("the secret must be whsec_ followed by base64") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise BadSecret(
            f"the secret must hold {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes")
    return key


def normalize_secret(secret: str) -> str:
    """The secret in its canonical ``whsec_<base64>`` form (checked)."""
    return PREFIX + base64.b64encode(parse_secret(secret)).decode("ascii")


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def headers(secret: str | None, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt: ``webhook-id`` and
    ``webhook-timestamp`` always, ``webhook-signature`` when there is a secret."""
    out = {"webhook-id": msg_id, "webhook-timestamp": str(timestamp)}
    if secret:
        out["webhook-signature"] = signature(parse_secret(secret), msg_id, timestamp, body)
    return out
