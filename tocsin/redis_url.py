"""The Redis URL the broker and the rate limiter share (``--broker redis://…``).

Both connect to the server one URL names; the broker reads a few options of its own
from that URL's query (``channel``, ``ping_interval``, ``ping_timeout``,
``backoff_max``: ``broker/redis.py``) that redis-py must not see. Split and redacted
here, in a leaf, so the rate limiter does not import the broker to read the URL.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["OWN_OPTIONS", "redact", "split_url"]

OWN_OPTIONS = ("channel", "ping_interval", "ping_timeout", "backoff_max")
"""Query options Tocsin reads itself; the rest go to redis-py."""


def redact(url: str) -> str:
    """``url`` without its password, for logs and ``/readyz``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def split_url(url: str) -> tuple[str, dict[str, str]]:
    """Separate Tocsin's own query options from the ones redis-py understands."""
    parts = urlsplit(url)
    own: dict[str, str] = {}
    rest: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in OWN_OPTIONS:
            own[key] = value
        else:
            rest.append((key, value))
    return urlunsplit(parts._replace(query=urlencode(rest))), own
