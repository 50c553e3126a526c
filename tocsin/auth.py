"""Who is calling: publishers (an app's backend, by API key) and subscribers (a
user's browser, by a JWT the server's secret signed)."""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import time
from dataclasses import dataclass

import jwt

from tocsin.errors import TocsinError

COOKIE_NAME = "tocsin_token"
ALGORITHM = "HS256"
MAX_TOKEN_TTL_S = 30 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Publisher:
    id: str
    """A stable, non-secret name for the key (hash prefix): scopes idempotency keys."""


@dataclass(frozen=True, slots=True)
class Subscriber:
    user: str
    topics: tuple[str, ...] = ()
    expires_at: float | None = None  # seconds epoch

    def may_read(self, topic: str) -> bool:
        return any(_pattern(p).fullmatch(topic) for p in self.topics)


Principal = Publisher | Subscriber


@functools.lru_cache(maxsize=4096)
def _pattern(glob: str) -> re.Pattern[str]:
    """``project:*`` style patterns: ``*`` matches any run of characters, nothing else is
    special (so topic names may contain ``?``, ``[`` and the like)."""
    return re.compile(".*".join(re.escape(part) for part in glob.split("*")))


def key_id(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


def mint_token(
    secret: str, user: str, topics: list[str] | None = None, ttl: int = 3600
) -> tuple[str, int]:
    """A subscriber token for ``user``; returns ``(token, expires_at_ms)``."""
    exp = int(time.time()) + ttl
    claims: dict[str, object] = {"sub": user, "exp": exp, "iat": int(time.time())}
    if topics is not None:
        claims["topics"] = list(topics)
    return jwt.encode(claims, secret, algorithm=ALGORITHM), exp * 1000


VERIFIED_CACHE_MAX = 100_000


class Authenticator:
    def __init__(self, api_keys: list[str], jwt_secret: str) -> None:
        self._keys = [(k.encode(), key_id(k)) for k in api_keys]
        self._secret = jwt_secret
        # Tokens already verified, with their claims. Verifying a JWT (HMAC key
        # preparation, JSON decoding) was the largest cost of a reconnect storm in the
        # profile, and a reconnecting client presents the same token again. Expiry is
        # still checked on every use.
        self._verified: dict[str, Subscriber] = {}

    def authenticate(self, credential: str | None) -> Principal:
        if not credential:
            raise TocsinError("unauthorized", "Missing credentials: send "
                              "'Authorization: Bearer <token>', a tocsin_token cookie or ?token=.")
        raw = credential.encode()
        for key, kid in self._keys:
            # Constant-time comparison against every key: no early exit on a match.
            if hmac.compare_digest(raw, key):
                return Publisher(kid)
        if credential.count(".") != 2 or not self._secret:
            raise TocsinError("unauthorized", "Invalid API key or token.")
        known = self._verified.get(credential)
        if known is not None:
            if known.expires_at is not None and known.expires_at <= time.time():
                del self._verified[credential]
                raise TocsinError("unauthorized", "The token has expired.")
            return known
        who = self._verify(credential)
        if len(self._verified) >= VERIFIED_CACHE_MAX:
            self._verified.clear()  # cheap bound; it refills from the next connects
        self._verified[credential] = who
        return who

    def _verify(self, credential: str) -> Subscriber:
        try:
            claims = jwt.decode(credential, self._secret, algorithms=[ALGORITHM],
                                options={"require": ["sub"]})
        except jwt.ExpiredSignatureError as exc:
            raise TocsinError("unauthorized", "The token has expired.") from exc
        except jwt.InvalidTokenError as exc:
            raise TocsinError("unauthorized", f"Invalid token: {exc}.") from exc
        sub = claims.get("sub")
        topics = claims.get("topics") or []
        if not isinstance(sub, str) or not sub:
            raise TocsinError("unauthorized", "The token's 'sub' claim must be a user id.")
        if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
            raise TocsinError("unauthorized", "The token's 'topics' claim must be a list.")
        exp = claims.get("exp")
        return Subscriber(sub, tuple(topics), float(exp) if exp is not None else None)
