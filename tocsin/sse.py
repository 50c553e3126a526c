"""SSE wire format (kept apart from streaming): https://html.spec.whatwg.org/#server-sent-events

The only module that knows how an event looks on the wire (``id:``/``event:``/
``data:`` lines) and how a frame is wrapped as an HTTP/1.1 chunk for direct socket
writes. A leaf: it imports nothing from Tocsin and lives below both ``tocsin.events``
(which builds each event's frame once, here) and ``tocsin.streams`` (which writes
them), so the event type does not reach up into the transports.
"""

from __future__ import annotations

PING = b": ping\n\n"
EXPIRED = b"event: expired\ndata: {}\n\n"
"""Sent (no id) when the subscriber's token expires, just before the stream ends: the
client reconnects with a fresh token from its last id, nothing lost."""

SSE_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache, no-transform"),
    (b"x-accel-buffering", b"no"),  # nginx: do not buffer this response
    (b"connection", b"keep-alive"),
]


def chunked(data: bytes) -> bytes:
    """``data`` as one chunk of ``Transfer-Encoding: chunked``."""
    return b"%x\r\n%b\r\n" % (len(data), data)


PING_CHUNK = chunked(PING)


def retry_frame(ms: int) -> bytes:
    return f"retry: {ms}\n\n".encode()


def frame(event: str, data: str, id: int | str | None = None) -> bytes:
    """One event. ``data`` must not contain newlines (compact JSON never does)."""
    head = f"id: {id}\n" if id is not None else ""
    return f"{head}event: {event}\ndata: {data}\n\n".encode()
