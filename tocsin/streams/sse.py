"""SSE wire format (kept apart from streaming): https://html.spec.whatwg.org/#server-sent-events"""

from __future__ import annotations

from tocsin.events import chunked

PING = b": ping\n\n"
PING_CHUNK = chunked(PING)

SSE_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache, no-transform"),
    (b"x-accel-buffering", b"no"),  # nginx: do not buffer this response
    (b"connection", b"keep-alive"),
]


def retry_frame(ms: int) -> bytes:
    return f"retry: {ms}\n\n".encode()


def frame(event: str, data: str, id: int | str | None = None) -> bytes:
    """One event. ``data`` must not contain newlines (compact JSON never does)."""
    head = f"id: {id}\n" if id is not None else ""
    return f"{head}event: {event}\ndata: {data}\n\n".encode()
