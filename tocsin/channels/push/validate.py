"""What a browser's ``PushSubscription.toJSON()`` must look like before the server
will POST to it: the endpoint is where Tocsin sends requests on a user's say-so, so
it is checked like any user-supplied URL a server fetches (SSRF)."""

from __future__ import annotations

from tocsin.channels.push.vapid import b64url, load_public_key, public_raw, unb64url
from tocsin.errors import TocsinError
from tocsin.outbound import Refused, Rules, check_url

MAX_ENDPOINT_CHARS = 2048
AUTH_BYTES = 16


def check_endpoint(endpoint: str, rules: Rules) -> str:
    """The endpoint if Tocsin may POST to it: at most 2048 characters, and what
    :func:`tocsin.outbound.check_url` allows (``https://`` to a public host, no
    credentials; loopback only as ``rules`` say). Host names are checked again when
    a message is sent, by the addresses they resolve to then."""
    if len(endpoint) > MAX_ENDPOINT_CHARS:
        raise TocsinError("too_long", f"'endpoint' is longer than {MAX_ENDPOINT_CHARS} "
                          "characters.", "endpoint")
    if not endpoint.isprintable() or any(c.isspace() for c in endpoint):
        raise TocsinError("invalid_field", "'endpoint': must be a URL without spaces or "
                          "control characters.", "endpoint")
    try:
        check_url(endpoint, rules)
    except Refused as exc:
        raise TocsinError("invalid_field", f"'endpoint': {exc}.", "endpoint") from None
    return endpoint


def check_keys(p256dh: str, auth: str) -> tuple[str, str]:
    """The device's keys in canonical form (unpadded base64url): ``p256dh`` a 65-byte
    uncompressed P-256 point on the curve, ``auth`` 16 bytes."""
    try:
        point = load_public_key(p256dh)
    except ValueError as exc:
        raise TocsinError("invalid_field", f"'keys.p256dh': {exc} (base64url of the "
                          "browser's P-256 public key).", "keys.p256dh") from None
    try:
        secret = unb64url(auth)
    except ValueError:
        secret = b""
    if len(secret) != AUTH_BYTES:
        raise TocsinError("invalid_field", "'keys.auth' must be base64url of 16 bytes.",
                          "keys.auth")
    return b64url(public_raw(point)), b64url(secret)
