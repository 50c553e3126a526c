"""Who is calling: publishers (an app's backend, by API key) and subscribers (a
user's browser, by a JWT the server's secret signed).

Where credentials may come from (decided here, once, for every route):
- ``Authorization: Bearer <api key or token>`` — the only place an API key is accepted
  (keys in URLs end up in access logs; keys in cookies would be sent by browsers);
- the ``tocsin_token`` cookie — a subscriber token only;
- ``?token=`` — a subscriber token only (EventSource cannot send headers).
The first one present wins, in that order.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl

import jwt

from tocsin.errors import TocsinError
from tocsin.text import name_error

COOKIE_NAME = "tocsin_token"
ALGORITHM = "HS256"
MAX_TOKEN_TTL_S = 30 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Publisher:
    id: str
    """A stable, non-secret name for the key (hash prefix), for logs. Every key is the
    same publisher (idempotency keys, groups, policies, incidents and the
    ``--rate-publish`` bucket are the deployment's: docs/deploy.md, Security)."""


@dataclass(frozen=True, slots=True)
class Subscriber:
    user: str
    topics: tuple[str, ...] = ()
    expires_at: float | None = None  # seconds epoch

    def may_read(self, topic: str) -> bool:
        return any(glob_match(p, topic) for p in self.topics)


Principal = Publisher | Subscriber

CredentialSource = Literal["header", "cookie", "query"]


@dataclass(frozen=True, slots=True)
class Credential:
    value: str
    source: CredentialSource


def find_credential(headers: dict[str, str], query_string: bytes) -> Credential | None:
    """The caller's credential from request headers (lower-case names) and the raw
    query string, by the rule in this module's docstring."""
    authz = headers.get("authorization", "")
    if authz[:7].lower() == "bearer ":
        return Credential(authz[7:].strip(), "header")
    cookie = headers.get("cookie")
    if cookie:
        value = cookie_value(cookie, COOKIE_NAME)
        if value:
            return Credential(value, "cookie")
    if b"token=" in query_string:
        for name, value in parse_qsl(query_string.decode("latin-1")):
            if name == "token" and value:
                return Credential(value, "query")
    return None


def cookie_value(header: str, name: str) -> str | None:
    """One cookie's value. Tolerant by design: ``http.cookies.SimpleCookie`` raises on
    names it dislikes (a cookie set by a sibling subdomain could break every request)."""
    for part in header.split(";"):
        key, sep, value = part.partition("=")
        if sep and key.strip() == name:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            return value
    return None


def glob_match(pattern: str, text: str) -> bool:
    """``project:*`` style patterns: ``*`` matches any run of characters, nothing else is
    special (so topic names may contain ``?``, ``[`` and the like).

    Linear, without backtracking: the part before the first ``*`` must start the text,
    the part after the last must end it, and each part in between is taken at its
    leftmost place after the previous one (taking it any later can only leave less
    room for the rest). A regex (``.*a.*a.*b``) backtracks: a publisher-minted pattern
    with five stars took ~100 s on a 200-character topic, on the event loop.
    """
    first, star, rest = pattern.partition("*")
    if not star:
        return pattern == text
    middle, _, last = rest.rpartition("*")
    if len(text) < len(first) + len(last) or not text.startswith(first) \
            or not text.endswith(last):
        return False
    pos, end = len(first), len(text) - len(last)
    for part in middle.split("*") if middle else ():
        found = text.find(part, pos, end)
        if found < 0:
            return False
        pos = found + len(part)
    return True


TOPIC_RE = re.compile(r"[A-Za-z0-9_.:@\-]{1,200}")


def check_topic(topic: str, who: Principal) -> None:
    """A valid topic name that the caller may use (publishers may use any)."""
    if not TOPIC_RE.fullmatch(topic):
        raise TocsinError("invalid_field", "Topic names use letters, digits and _ . : @ -, "
                          "at most 200 characters.", "topic")
    if isinstance(who, Subscriber) and not who.may_read(topic):
        raise TocsinError("forbidden", f"This token does not allow topic {topic!r}.")


def require_publisher(who: Principal | None) -> Publisher:
    if not isinstance(who, Publisher):
        raise TocsinError("forbidden", "This route needs a publisher API key, not a user token.")
    return who


def require_subscriber(who: Principal | None) -> Subscriber:
    if not isinstance(who, Subscriber):
        raise TocsinError("forbidden", "This route needs a user token, not a publisher API key.")
    return who


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
        # still checked on every use. Keyed by the token's signature, not the whole
        # token: an entry lives as long as its connection, and a token is ~200 bytes
        # where its signature is 43 (measured: the key was the largest string a parked
        # stream kept). A hit still checks that signature against the header and
        # claims presented (one HMAC over a pre-keyed copy, ~1 us; PyJWT's cost is
        # its key preparation and decoding), so it is that very token.
        self._mac = hmac.new(jwt_secret.encode(), digestmod=hashlib.sha256)
        self._verified: dict[str, Subscriber] = {}
        self._topics: dict[tuple[str, ...], tuple[str, ...]] = {}
        """One tuple per distinct ``topics`` claim (most tokens share a few), emptied
        with the cache."""

    def authenticate(self, found: Credential | None) -> Principal:
        if found is None or not found.value:
            raise TocsinError("unauthorized", "Missing credentials: send "
                              "'Authorization: Bearer <token>', a tocsin_token cookie or ?token=.")
        credential = found.value
        raw = credential.encode()
        publisher: Publisher | None = None
        for key, kid in self._keys:
            # Constant-time comparison against every key: no early exit on a match.
            if hmac.compare_digest(raw, key):
                publisher = Publisher(kid)
        if publisher is not None:
            if found.source != "header":
                raise TocsinError("unauthorized", "API keys are accepted only in the "
                                  "'Authorization: Bearer' header, never in a URL or cookie.")
            return publisher
        if credential.count(".") != 2 or not self._secret:
            raise TocsinError("unauthorized", "Invalid API key or token.")
        cut = credential.rindex(".")
        signature = credential[cut + 1:]
        known = self._verified.get(signature)
        if known is not None and self._signs(credential[:cut], signature):
            if known.expires_at is not None and known.expires_at <= time.time():
                del self._verified[signature]
                raise TocsinError("unauthorized", "The token has expired.")
            return known
        who = self._verify(credential)
        if len(self._verified) >= VERIFIED_CACHE_MAX:
            self._verified.clear()  # cheap bound; it refills from the next connects
            self._topics.clear()
        topics = self._topics.setdefault(who.topics, who.topics)
        if topics is not who.topics:
            who = Subscriber(who.user, topics, who.expires_at)
        self._verified[signature] = who
        return who

    def _signs(self, signed: str, signature: str) -> bool:
        """Whether ``signature`` is our HS256 signature of ``signed`` (header.claims)."""
        mac = self._mac.copy()
        mac.update(signed.encode())
        expected = base64.urlsafe_b64encode(mac.digest()).rstrip(b"=")
        return hmac.compare_digest(expected, signature.encode())

    def _verify(self, credential: str) -> Subscriber:
        try:
            claims = jwt.decode(credential, self._secret, algorithms=[ALGORITHM],
                                options={"require": ["sub", "exp"]})
        except jwt.ExpiredSignatureError as exc:
            raise TocsinError("unauthorized", "The token has expired.") from exc
        except jwt.MissingRequiredClaimError as exc:
            # A token without 'exp' would be valid forever: never accepted.
            raise TocsinError("unauthorized", f"Invalid token: it has no "
                              f"'{exc.claim}' claim.") from exc
        except jwt.InvalidTokenError as exc:
            raise TocsinError("unauthorized", f"Invalid token: {exc}.") from exc
        sub = claims.get("sub")
        topics = claims.get("topics") or []
        if not isinstance(sub, str) or not sub:
            raise TocsinError("unauthorized", "The token's 'sub' claim must be a user id.")
        why = name_error(sub)
        if why is not None:  # the user id reaches the store: the name rule (text.py)
            raise TocsinError("unauthorized", f"The token's 'sub' claim {why}.")
        if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
            raise TocsinError("unauthorized", "The token's 'topics' claim must be a list.")
        return Subscriber(sub, tuple(topics), float(claims["exp"]))
