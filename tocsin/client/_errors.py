"""The one error type of the SDK and the reply check every call goes through."""

from __future__ import annotations

import contextlib
from typing import Any

import httpx


class TocsinAPIError(Exception):
    """A 4xx/5xx reply: ``status``, and ``code``, ``message`` and ``field`` from the
    server's ``{"error": {...}}`` body."""

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
        err = body.get("error") if isinstance(body, dict) else None
        if not isinstance(err, dict):
            return cls(status, "http_error", str(body)[:200])
        field = err.get("field")
        return cls(status, str(err.get("code", "unknown")), str(err.get("message", "")),
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


def check(r: httpx.Response) -> Any:
    """The reply's JSON, or :class:`TocsinAPIError` for a 4xx/5xx."""
    if r.status_code >= 400:
        raise TocsinAPIError.from_response(r)
    return r.json()
