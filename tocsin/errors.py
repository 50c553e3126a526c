"""Every client-visible error: one exception type and one table of codes.

A 4xx/5xx reply always has the body ``{"error": {"code", "message", "field"?}}``.
"""

from __future__ import annotations

from typing import Any

# code -> (HTTP status, default message)
ERROR_CODES: dict[str, tuple[int, str]] = {
    "malformed_json": (400, "The request body is not valid JSON."),
    "invalid_field": (400, "A field has an invalid value."),
    "missing_field": (400, "A required field is missing."),
    "too_long": (400, "A field is longer than allowed."),
    "too_large": (400, "A field is larger than allowed."),
    "payload_too_large": (413, "The request body is larger than allowed."),
    "too_many_recipients": (400, "A notification can have at most 10,000 recipients."),
    "bad_cursor": (400, "The cursor is not one this server issued."),
    "unauthorized": (401, "Missing, invalid or expired credentials."),
    "forbidden": (403, "These credentials may not use this route."),
    "not_found": (404, "No such resource."),
    "method_not_allowed": (405, "Method not allowed."),
    "unsupported_media_type": (415, "Send the request body as JSON with "
                               "'Content-Type: application/json'."),
    "conflict": (409, "The request conflicts with the current state."),
    "too_many_streams": (429, "This user holds too many open streams on this server; "
                         "close one (one stream per browser is enough)."),
    "headers_too_large": (431, "The request headers are larger than allowed."),
    "rate_limited": (429, "Too many requests; retry after the time in 'Retry-After'."),
    "store_unavailable": (503, "The database is unavailable; nothing was stored. Retry later."),
    "internal": (500, "Internal server error."),
}


class TocsinError(Exception):
    """An error that maps to a JSON reply with a code from :data:`ERROR_CODES`."""

    def __init__(self, code: str, message: str | None = None, field: str | None = None) -> None:
        status, default = ERROR_CODES[code]
        self.code = code
        self.status = status
        self.message = message or default
        self.field = field
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"TocsinError(code={self.code!r}, status={self.status}, field={self.field!r})"

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            err["field"] = self.field
        return {"error": err}


class StoreUnavailable(TocsinError):
    """The database could not be reached; raised by stores, answered as 503."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__("store_unavailable", message)
