"""Signed unsubscribe links: ``<public url>/api/email/unsubscribe?token=<JWT>``.

The token is a JWT (HS256) with ``sub`` (the user), ``types`` (the notification
types whose email it turns off), ``purpose: "unsubscribe"`` and ``exp``. Its key is
derived from the server's JWT secret (HMAC of the secret and a fixed label), not the
secret itself: an emailed link is read by mail scanners, forwarded and logged, and a
token signed with the secret itself would also be accepted as the user's login
token (the gate takes any ``?token=`` it can verify). The derived key makes that
impossible whatever the token carries; the ``purpose`` claim is checked as well.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote

import jwt

from tocsin.channels.email.settings import EmailNodeSettings
from tocsin.errors import TocsinError

UNSUBSCRIBE_PATH = "/api/email/unsubscribe"
PURPOSE = "unsubscribe"
TOKEN_TTL_S = 180 * 24 * 3600
"""How long an unsubscribe link works: mail is read (and clicked) long after it arrives."""
MAX_TOKEN_TYPES = 20
"""Types one link may turn off (a digest's); keeps the URL short."""
MAX_TOKEN_CHARS = 4096
_LABEL = b"tocsin:email-unsubscribe:v1"


def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), _LABEL, hashlib.sha256).digest()


def mint_unsubscribe(secret: str, user: str, types: list[str], now_s: int | None = None,
                     ttl_s: int = TOKEN_TTL_S) -> str:
    now = int(time.time()) if now_s is None else now_s
    claims = {"sub": user, "types": list(dict.fromkeys(types))[:MAX_TOKEN_TYPES],
              "purpose": PURPOSE, "iat": now, "exp": now + ttl_s}
    return jwt.encode(claims, _key(secret), algorithm="HS256")


def verify_unsubscribe(secret: str, token: str | None) -> tuple[str, list[str]]:
    """``(user, types)`` of a valid unsubscribe token; :class:`TocsinError` (400 for a
    malformed or other-purpose token, 401 for a forged or expired one) otherwise."""
    if not token:
        raise TocsinError("missing_field", "The unsubscribe link has no token.", "token")
    if not secret:
        raise TocsinError("unauthorized", "This server has no JWT secret: its unsubscribe "
                          "links cannot be checked.")
    if len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
        raise TocsinError("invalid_field", "The unsubscribe link is damaged (its token is "
                          "not a token this server issued).", "token")
    try:
        claims = jwt.decode(token, _key(secret), algorithms=["HS256"],
                            options={"require": ["sub", "exp", "purpose"]})
    except jwt.ExpiredSignatureError:
        raise TocsinError("unauthorized", "This unsubscribe link has expired; use the link "
                          "in a newer email, or change your preferences.") from None
    except jwt.InvalidSignatureError:
        raise TocsinError("unauthorized", "This unsubscribe link was not signed by this "
                          "server.") from None
    except jwt.InvalidTokenError:
        raise TocsinError("invalid_field", "The unsubscribe link is damaged (its token is "
                          "not a token this server issued).", "token") from None
    user, types = claims.get("sub"), claims.get("types")
    if claims.get("purpose") != PURPOSE:
        raise TocsinError("invalid_field", "This token is not an unsubscribe token.", "token")
    if not isinstance(user, str) or not user or not isinstance(types, list) or not types \
            or len(types) > MAX_TOKEN_TYPES \
            or not all(isinstance(t, str) and t for t in types):
        raise TocsinError("invalid_field", "The unsubscribe token's claims are malformed.",
                          "token")
    return user, [str(t) for t in types]


def public_base(settings: EmailNodeSettings) -> str:
    """Where links in emails point: ``--public-url``, else this server's own address
    (``--host``/``--port``; a wildcard host becomes ``localhost``)."""
    if settings.public_url:
        return settings.public_url
    host = settings.host
    if host in ("", "0.0.0.0", "::"):
        host = "localhost"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def unsubscribe_url(settings: EmailNodeSettings, user: str, types: list[str]) -> str | None:
    """The link for ``user`` and ``types``; ``None`` without a JWT secret to sign it."""
    if not settings.jwt_secret:
        return None
    token = mint_unsubscribe(settings.jwt_secret, user, types)
    return f"{public_base(settings)}{UNSUBSCRIBE_PATH}?token={quote(token, safe='')}"
