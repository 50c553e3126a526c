"""VAPID (RFC 8292): the server's P-256 key pair and the ``Authorization: vapid``
header that proves to a push service that a message comes from the server a
subscription was made for.

The key is either given (``--vapid-private-key``: base64url of the raw 32-byte
private scalar, or PEM) or generated once and kept in the database (``tocsin_kv``,
key ``vapid``) so every node signs with the same one. Browsers bind a subscription
to the public key it was made with: a different key means every device must
subscribe again.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from typing import TYPE_CHECKING

import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

if TYPE_CHECKING:
    from tocsin.channels.push.store import SqlPushStore

KV_KEY = "vapid"
"""The ``tocsin_kv`` row holding the generated key pair."""
JWT_TTL_S = 12 * 3600
"""Lifetime of a VAPID JWT (RFC 8292: at most 24 hours)."""
JWT_RENEW_S = 3600
"""A cached JWT is replaced when less than this is left of it."""
MAX_CACHED = 1000
_B64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")


def b64url(raw: bytes) -> str:
    """Unpadded base64url, the form Web Push uses everywhere."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    """Decode base64url, with or without padding; ``ValueError`` for anything else."""
    if not _B64URL.fullmatch(text):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc


def load_private_key(text: str) -> ec.EllipticCurvePrivateKey:
    """A P-256 private key from base64url (32 raw bytes) or PEM (PKCS#8 or SEC1);
    ``ValueError`` naming what is wrong otherwise."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(text.encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"not a readable unencrypted PEM private key ({exc})") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey) \
                or not isinstance(key.curve, ec.SECP256R1):
            raise ValueError("the PEM key is not a P-256 (prime256v1) EC key")
        return key
    try:
        raw = unb64url(text)
    except ValueError:
        raise ValueError("give base64url of the raw 32-byte P-256 private key, or a PEM "
                         "key") from None
    if len(raw) != 32:
        raise ValueError(f"a raw P-256 private key is 32 bytes (this one is {len(raw)})")
    scalar = int.from_bytes(raw, "big")
    try:
        return ec.derive_private_key(scalar, ec.SECP256R1())
    except ValueError as exc:
        raise ValueError("not a valid P-256 private key (out of range)") from exc


def generate() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def private_text(key: ec.EllipticCurvePrivateKey) -> str:
    """base64url of the raw 32-byte private scalar (what ``--vapid-private-key`` takes)."""
    return b64url(key.private_numbers().private_value.to_bytes(32, "big"))


def public_raw(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> bytes:
    """The 65-byte uncompressed point (``0x04 || X || Y``)."""
    pub = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return pub.public_bytes(serialization.Encoding.X962,
                            serialization.PublicFormat.UncompressedPoint)


def public_text(key: ec.EllipticCurvePrivateKey) -> str:
    """The public key as ``PushManager.subscribe({applicationServerKey})`` takes it."""
    return b64url(public_raw(key))


def load_public_key(text: str) -> ec.EllipticCurvePublicKey:
    """A P-256 public key from base64url of its 65-byte uncompressed point (a browser's
    ``p256dh``, a VAPID ``k=``); ``ValueError`` otherwise."""
    raw = unb64url(text)
    if len(raw) != 65 or raw[0] != 4:
        raise ValueError("not a 65-byte uncompressed P-256 point")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError as exc:
        raise ValueError("not a point on P-256") from exc


async def stored_key(store: SqlPushStore, now: int) -> ec.EllipticCurvePrivateKey:
    """The database's key pair, created on first use. Nodes starting together agree:
    each inserts its own candidate only if no row exists, then reads back the row that
    won."""
    text = await store.kv_get(KV_KEY)
    if text is None:
        key = generate()
        value = orjson.dumps({"privateKey": private_text(key), "publicKey": public_text(key),
                              "createdAt": now}).decode()
        text = await store.kv_setdefault(KV_KEY, value, now)
    return load_private_key(str(orjson.loads(text)["privateKey"]))


class Vapid:
    """The server's VAPID identity: its key, its ``sub`` contact, and the JWTs it
    signs (cached per push service origin while they have an hour left)."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, subject: str) -> None:
        self.key = key
        self.subject = subject
        self.public_key = public_text(key)
        self._cache: dict[str, tuple[str, int]] = {}

    def authorization(self, audience: str, now_s: int | None = None) -> str:
        """``vapid t=<JWT>, k=<public key>`` for a push service at origin ``audience``."""
        now_s = int(time.time()) if now_s is None else now_s
        cached = self._cache.get(audience)
        if cached is None or cached[1] - now_s < JWT_RENEW_S:
            exp = now_s + JWT_TTL_S
            token = jwt.encode({"aud": audience, "exp": exp, "sub": self.subject},
                               self.key, algorithm="ES256")
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
            cached = self._cache[audience] = (token, exp)
        return f"vapid t={cached[0]}, k={self.public_key}"
