"""The Redis URL the broker and the rate limiter share (``--broker redis://…``).

Both connect to the server one URL names; the broker reads a few options of its own
from that URL's query (``channel``, ``ping_interval``, ``ping_timeout``,
``backoff_max``: ``broker/redis.py``) that redis-py must not see. Split and redacted
here, in a leaf, so the rate limiter does not import the broker to read the URL.
:func:`check_url` is the settings' check of such a URL at start: an option neither
Tocsin nor redis-py takes would otherwise surface only when the first connection is
made (a ``TypeError`` deep in redis-py, the node degraded forever).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tocsin.units import parse_duration
from tocsin.url_options import ValueCheck, check_options, parameters

__all__ = ["OWN_OPTIONS", "check_url", "redact", "split_url"]

OWN_OPTIONS = ("channel", "ping_interval", "ping_timeout", "backoff_max")
"""Query options Tocsin reads itself; the rest go to redis-py."""
DURATION_OPTIONS = ("ping_interval", "ping_timeout", "backoff_max")
SCHEMES = ("redis", "rediss", "unix")
SET_BY_TOCSIN = ("max_connections", "timeout")
"""redis-py URL options of the connection pool, which Tocsin sizes itself (the broker
passes them too: given twice, the pool could not be built)."""
_NOT_OPTIONS = {"self", "args", "kwargs", "host", "port", "path", "db", "username",
                "password"}


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
    # Split by hand: urlunsplit would turn unix:///path into unix:/path, which
    # redis-py does not read.
    base, _, query = url.partition("?")
    own: dict[str, str] = {}
    rest: list[tuple[str, str]] = []
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in OWN_OPTIONS:
            own[key] = value
        else:
            rest.append((key, value))
    return base + ("?" + urlencode(rest) if rest else ""), own


def _positive_duration(name: str, value: str) -> None:
    if parse_duration(value) <= 0:
        raise ValueError(f"{name} must be a positive duration, not {value!r}")


def _not_empty(name: str, value: str) -> None:
    if not value:
        raise ValueError(f"{name} must not be empty")


def _set_by_tocsin(name: str, value: str) -> None:
    raise ValueError(f"option {name!r} is set by Tocsin, leave it out of the URL")


OWN_CHECKS: dict[str, ValueCheck | None] = {
    "channel": _not_empty, **dict.fromkeys(DURATION_OPTIONS, _positive_duration)}
TAKES = (f"Tocsin's: {', '.join(OWN_OPTIONS)}; others must be redis-py connection "
         "options, e.g. socket_keepalive, health_check_interval")


def check_url(url: str) -> None:
    """Raise ``ValueError`` naming what is wrong with a broker URL: its scheme, an
    option neither Tocsin nor redis-py takes (``?backlog=``, ``?chanel=``), or a value
    one of them cannot read."""
    scheme = url.partition("://")[0].lower()
    if scheme not in SCHEMES:
        raise ValueError(f"unknown Redis URL scheme {scheme!r} (use redis://, rediss:// "
                         "or unix://)")
    redis_url, own = split_url(url)
    check_options(own, OWN_CHECKS, (), TAKES)
    from redis.asyncio.connection import Connection, parse_url

    try:
        kwargs = dict(parse_url(redis_url))
    except ValueError as exc:
        raise ValueError(str(exc).rstrip(".")) from None
    connection_class = kwargs.pop("connection_class", Connection)
    assert isinstance(connection_class, type)
    accepted = parameters(*(vars(cls)["__init__"] for cls in connection_class.__mro__
                            if "__init__" in vars(cls)))
    check_options(kwargs, dict.fromkeys(SET_BY_TOCSIN, _set_by_tocsin),
                  accepted | _NOT_OPTIONS, TAKES)
