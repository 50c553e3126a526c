"""Small ASGI helpers shared by the gate, the hot routes, the stream transports and
the rate limiter: headers, JSON replies, bounded body reads. Below ``api/`` and
``streams/`` (it imports only ``errors``), so the transports need no web framework."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from starlette.types import Receive, Scope, Send

from tocsin.errors import TocsinError

Headers = Sequence[tuple[bytes, bytes]]

PRINCIPAL_KEY = "tocsin.principal"
"""Where the gate leaves the authenticated caller in the ASGI scope (``api/deps.py``)."""

MAX_BODY_BYTES = 8 * 1024 * 1024
"""The one request size limit (10,000 recipients of 200 characters fit easily)."""


def header_dict(scope: Scope) -> dict[str, str]:
    """Request headers by lower-case name (the last of repeated ones wins)."""
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


async def send_json(send: Send, status: int, body: bytes, extra: Headers = ()) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()), *extra]})
    await send({"type": "http.response.body", "body": body})


async def send_error(send: Send, err: TocsinError, extra: Headers = ()) -> None:
    await send_json(send, err.status, orjson.dumps(err.body()), extra)


async def read_body(receive: Receive, limit: int = MAX_BODY_BYTES) -> bytes:
    """The whole request body, refused as soon as it grows past ``limit`` (chunked
    bodies too: nothing past the limit is kept)."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise TocsinError("invalid_field", "The client went away mid-request.")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise TocsinError("payload_too_large")
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields ``body`` once, then whatever the client sends next
    (its disconnect), for an app behind a layer that already read the body."""
    sent = False

    async def receive_again() -> dict[str, object]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        message: dict[str, object] = dict(await receive())
        return message

    return receive_again
