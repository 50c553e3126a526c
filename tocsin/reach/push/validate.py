"""What a browser's ``PushSubscription.toJSON()`` must look like before the server
will POST to it: the endpoint is where Tocsin sends requests on a user's say-so, so
it is checked like any user-supplied URL a server fetches (SSRF)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from tocsin.errors import TocsinError
from tocsin.reach.push.vapid import b64url, load_public_key, public_raw, unb64url

MAX_ENDPOINT_CHARS = 2048
AUTH_BYTES = 16


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_internal_ip(host: str) -> bool:
    """A literal address no public push service has (private, loopback, link-local,
    multicast, reserved, unspecified; IPv4-mapped IPv6 judged as IPv4)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
            or ip.is_reserved or ip.is_unspecified or not ip.is_global)


def check_endpoint(endpoint: str, allow_insecure: bool) -> str:
    """The endpoint if Tocsin may POST to it: ``https://`` to a public host, no
    credentials, at most 2048 characters. ``allow_insecure`` (tests, the demo) also
    lets ``http://`` and ``https://`` to a loopback address through, nothing else."""
    def bad(why: str) -> TocsinError:
        return TocsinError("invalid_field", f"'endpoint': {why}.", "endpoint")

    if len(endpoint) > MAX_ENDPOINT_CHARS:
        raise TocsinError("too_long", f"'endpoint' is longer than {MAX_ENDPOINT_CHARS} "
                          "characters.", "endpoint")
    if not endpoint.isprintable() or any(c.isspace() for c in endpoint):
        raise bad("must be a URL without spaces or control characters")
    try:
        parts = urlsplit(endpoint)
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise bad("not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not host:
        raise bad("must be an https:// URL")
    if "@" in parts.netloc:
        raise bad("must not carry credentials (user:password@)")
    loopback = _is_loopback(host)
    if allow_insecure and loopback:
        return endpoint
    if scheme != "https":
        raise bad("must be an https:// URL" + (" (http:// only to a loopback address, "
                                                "with --push-allow-insecure)"
                                                if allow_insecure else ""))
    if loopback or host.endswith(".local") or _is_internal_ip(host):
        raise bad("must be a public push service, not a private, loopback or link-local "
                  "address")
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
