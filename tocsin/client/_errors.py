"""The SDK's one exception family and the reply check every call goes through.

    TocsinError
    ├── TocsinConnectionError     the server could not be reached (after retries)
    └── TocsinAPIError            the server answered 4xx/5xx: status, code, message, field
        ├── AuthenticationError   401, 403
        ├── NotFoundError         404
        ├── ConflictError         409
        ├── RateLimitError        429 (retry_after)
        └── ValidationError       400, 413, 415, 422
"""

from __future__ import annotations

import contextlib
from typing import Any

import httpx


class TocsinError(Exception):
    """Every error the SDK raises (arguments it refuses outright raise ``TypeError`` or
    ``ValueError``, as Python does)."""


class TocsinConnectionError(TocsinError):
    """The request got no reply: the connection could not be made, dropped, or timed out,
    and retrying (where that was safe) did not help. The transport's own exception
    (an ``httpx.TransportError`` or ``OSError``) is its ``__cause__``."""


class TocsinAPIError(TocsinError):
    """A 4xx/5xx reply: ``status``, and ``code``, ``message`` and ``field`` from the
    server's ``{"error": {...}}`` body. A subclass says which kind, where there is one."""

    def __init__(self, status: int, code: str, message: str = "",
                 field: str | None = None, *, retry_after: float | None = None) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.retry_after = retry_after
        """Seconds the server asked to wait (``Retry-After``), if it said."""
        super().__init__(f"{status} {code}: {message}")

    @classmethod
    def from_body(cls, status: int, body: Any) -> TocsinAPIError:
        """The error of an ``{"error": {code, message, field}}`` body (any other body:
        ``http_error``), of the subclass its status calls for."""
        kind = error_class(status)
        err = body.get("error") if isinstance(body, dict) else None
        if not isinstance(err, dict):
            return kind(status, "http_error", str(body)[:200])
        field = err.get("field")
        return kind(status, str(err.get("code", "unknown")), str(err.get("message", "")),
                    None if field is None else str(field))

    @classmethod
    def from_response(cls, r: httpx.Response) -> TocsinAPIError:
        try:
            body: Any = r.json()
        except ValueError:
            body = {"error": {"code": "http_error", "message": r.text[:200]}}
        err = cls.from_body(r.status_code, body)
        hint = r.headers.get("retry-after")
        with contextlib.suppress(ValueError):
            err.retry_after = None if hint is None else max(0.0, float(hint))
        return err


class AuthenticationError(TocsinAPIError):
    """401 (no valid credentials: a wrong key, an expired or foreign token) or 403 (the
    credentials do not allow this: a topic outside the token's patterns)."""


class NotFoundError(TocsinAPIError):
    """404: no such notification, key, policy, incident or user."""


class ConflictError(TocsinAPIError):
    """409: e.g. an idempotency key reused with a different body."""


class RateLimitError(TocsinAPIError):
    """429: too many requests; ``retry_after`` says when to try again."""


class ValidationError(TocsinAPIError):
    """400, 413, 415, 422: the request itself is wrong; ``field`` names what."""


_BY_STATUS: dict[int, type[TocsinAPIError]] = {
    401: AuthenticationError, 403: AuthenticationError, 404: NotFoundError,
    409: ConflictError, 429: RateLimitError, 400: ValidationError, 413: ValidationError,
    415: ValidationError, 422: ValidationError,
}


def error_class(status: int) -> type[TocsinAPIError]:
    """The exception type for a reply of ``status``."""
    return _BY_STATUS.get(status, TocsinAPIError)


def api_error(status: int, code: str, message: str = "", field: str | None = None,
              *, retry_after: float | None = None) -> TocsinAPIError:
    """A :class:`TocsinAPIError` of the subclass ``status`` calls for."""
    return error_class(status)(status, code, message, field, retry_after=retry_after)


def check(r: httpx.Response) -> Any:
    """The reply's JSON (None for an empty reply, e.g. 204), or :class:`TocsinAPIError`
    for a 4xx/5xx, or for a success whose body is not JSON (a route that answers text,
    such as ``/metrics`` through ``request()``, or a proxy's page): a raw
    ``JSONDecodeError`` would fall outside the exception family."""
    if r.status_code >= 400:
        raise TocsinAPIError.from_response(r)
    if not r.content:
        return None
    try:
        return r.json()
    except ValueError:
        kind = r.headers.get("content-type", "no content type")
        raise TocsinAPIError(r.status_code, "invalid_response",
                             f"the reply is not JSON ({kind}): {r.text[:200]}") from None


def check_credential(value: str, what: str) -> str:
    """``value`` if it can be sent as a bearer credential; else ``ValueError`` at once,
    naming it (an empty key otherwise fails only after the retries, as "Illegal header
    value")."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    if not value:
        raise ValueError(f"{what} is empty")
    if value != value.strip() or any(not c.isprintable() for c in value):
        raise ValueError(f"{what} has whitespace or control characters in it")
    return value
