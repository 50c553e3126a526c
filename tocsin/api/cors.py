"""The one CORS policy, applied by the gate to every route (streams included).

Written here rather than Starlette's ``CORSMiddleware`` because that middleware wraps
``send``, which hides the server's own ``send`` from the direct-write path of the
streams (``streams/direct.py``), and cross-origin streams are the common case for
an embedded bell. The rules are the usual ones:
- an origin in the allowed list is echoed, with credentials (cookies) allowed;
- ``*`` allows every origin *without* credentials (``Access-Control-Allow-Origin: *``):
  echoing any origin with credentials would let any site read a user's notifications
  with their cookie;
- anything else gets no CORS headers (the browser blocks the read).
"""

from __future__ import annotations

from tocsin.asgi import Headers

ALLOWED_METHODS = b"GET, POST, PUT, PATCH, DELETE, OPTIONS"
ALLOWED_HEADERS = b"Authorization, Content-Type, Last-Event-ID, Idempotency-Key"
PREFLIGHT_MAX_AGE = b"600"


class CorsPolicy:
    def __init__(self, origins: list[str]) -> None:
        self.any = "*" in origins
        self.origins = frozenset(o.rstrip("/") for o in origins if o != "*")

    def allows(self, origin: str) -> bool:
        return self.any or origin in self.origins

    def headers(self, origin: str | None) -> Headers:
        """Headers for an actual (non-preflight) response to ``origin``."""
        if origin is None:
            return []
        if origin in self.origins:
            return [(b"access-control-allow-origin", origin.encode("latin-1")),
                    (b"access-control-allow-credentials", b"true"),
                    (b"access-control-expose-headers", b"Retry-After"),
                    (b"vary", b"Origin")]
        if self.any:
            return [(b"access-control-allow-origin", b"*"),
                    (b"access-control-expose-headers", b"Retry-After")]
        return []

    def preflight(self, origin: str) -> Headers:
        """Headers for a preflight from ``origin`` (empty: not allowed)."""
        base = self.headers(origin)
        if not base:
            return []
        return [*base, (b"access-control-allow-methods", ALLOWED_METHODS),
                (b"access-control-allow-headers", ALLOWED_HEADERS),
                (b"access-control-max-age", PREFLIGHT_MAX_AGE)]
