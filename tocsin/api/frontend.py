"""The hot routes served in front of FastAPI, as plain ASGI: the two streams and
``POST /api/notifications`` (plus the request size check, so an oversized body is
refused before anything reads it).

Why, measured (see bench/README.md and the closing notes):
- Thousands of long-lived streams are the server's main load; serving them outside
  the framework's middleware stack keeps each idle stream's suspended call stack
  small and leaves the server's own ``send`` in hand, which the direct-write path
  needs (``direct.py``).
- A single-recipient publish spent most of its CPU in the framework's middleware
  and dependency machinery; here it is the same pydantic model, the same service
  call and the same error table, without the layers.
The FastAPI routes of the same paths remain (OpenAPI, other ASGI servers); the
behaviour is the same, and the API tests run against this layer.
"""

from __future__ import annotations

import logging
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl

import orjson
from pydantic import ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from tocsin.api.models import PublishIn
from tocsin.api.notifications import publish_body
from tocsin.api.topics import check_topic
from tocsin.api.validation import error_from_validation
from tocsin.auth import COOKIE_NAME, Authenticator, Publisher, Subscriber
from tocsin.config import Settings
from tocsin.errors import TocsinError
from tocsin.events import topic_stream, user_stream
from tocsin.service import Tocsin
from tocsin.streams.endpoint import EventStream, parse_event_id

log = logging.getLogger("tocsin")
PUBLISH_PATH = "/api/notifications"
MAX_BODY_BYTES = 8 * 1024 * 1024  # 10,000 recipients of 200 characters fit easily
INBOX_PATH = "/api/notifications/stream"
TOPICS_PREFIX = "/api/topics/"


class Frontend:
    def __init__(self, app: ASGIApp, tocsin: Tocsin, auth: Authenticator,
                 settings: Settings) -> None:
        self.app = app
        self.tocsin = tocsin
        self.auth = auth
        self.settings = settings
        self.origins = set(settings.cors_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path: str = scope["path"]
            if path == INBOX_PATH:
                await self._serve(scope, receive, send, None)
                return
            if path.startswith(TOPICS_PREFIX) and path.endswith("/stream"):
                topic = path[len(TOPICS_PREFIX) : -len("/stream")]
                if "/" not in topic:
                    await self._serve(scope, receive, send, topic)
                    return
        elif scope["type"] == "http" and self._declared_too_large(scope):
            # Answered here so the reply is our JSON error, not the framework's text.
            # (A chunked body without a length is cut off by FastAPI's own limit.)
            await self._error(send, TocsinError("payload_too_large"), [])
            return
        elif (scope["type"] == "http" and scope["method"] == "POST"
              and scope["path"] == PUBLISH_PATH):
            await self._publish(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _publish(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        extra = self._cors(headers.get("origin"))
        try:
            who = self.auth.authenticate(self._credential(headers, {}))
            if not isinstance(who, Publisher):
                raise TocsinError("forbidden",
                                  "This route needs a publisher API key, not a user token.")
            raw = await _read_body(receive)
            try:
                body = PublishIn.model_validate_json(raw)
            except ValidationError as exc:
                raise error_from_validation(exc.errors(), located=False) from None
            reply = orjson.dumps(await publish_body(self.tocsin, who.id, body))
        except TocsinError as err:
            await self._error(send, err, extra)
            return
        except Exception:
            log.exception("unhandled error in publish")
            await self._error(send, TocsinError("internal"), extra)
            return
        await send({"type": "http.response.start", "status": 201, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(reply)).encode()), *extra]})
        await send({"type": "http.response.body", "body": reply})

    @staticmethod
    def _declared_too_large(scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"content-length":
                return value.isdigit() and int(value) > MAX_BODY_BYTES
        return False

    @staticmethod
    async def _error(send: Send, err: TocsinError, extra: list[tuple[bytes, bytes]]) -> None:
        body = orjson.dumps(err.body())
        await send({"type": "http.response.start", "status": err.status, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()), *extra]})
        await send({"type": "http.response.body", "body": body})

    async def _serve(self, scope: Scope, receive: Receive, send: Send, topic: str | None) -> None:
        response = self._open(scope, topic)
        if isinstance(response, EventStream):
            # Only the response stays alive for the stream's lifetime: the parsed
            # headers and query are gone with ``_open``'s frame (memory per idle stream).
            await response(scope, receive, send)
        else:
            await self._error(send, *response)

    def _open(
        self, scope: Scope, topic: str | None
    ) -> EventStream | tuple[TocsinError, list[tuple[bytes, bytes]]]:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        extra = self._cors(headers.get("origin"))
        try:
            who = self.auth.authenticate(self._credential(headers, query))
            if not isinstance(who, Subscriber):
                raise TocsinError("forbidden",
                                  "This route needs a user token, not a publisher API key.")
            if topic is None:
                stream = user_stream(who.user)
            else:
                check_topic(topic, who)
                stream = topic_stream(topic)
        except TocsinError as err:
            return err, extra
        raw_id = headers.get("last-event-id")
        if raw_id is None:
            raw_id = query.get("lastEventId")
        return EventStream(self.tocsin.hub, stream, parse_event_id(raw_id),
                           self.settings.retry_ms, who.expires_at, extra)

    @staticmethod
    def _credential(headers: dict[str, str], query: dict[str, str]) -> str | None:
        authz = headers.get("authorization", "")
        if authz[:7].lower() == "bearer ":
            return authz[7:].strip()
        if "cookie" in headers:
            jar: SimpleCookie = SimpleCookie()
            jar.load(headers["cookie"])
            if COOKIE_NAME in jar:
                return jar[COOKIE_NAME].value
        return query.get("token")

    def _cors(self, origin: str | None) -> list[tuple[bytes, bytes]]:
        if origin is None or not (origin in self.origins or "*" in self.origins):
            return []
        return [(b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-allow-credentials", b"true"), (b"vary", b"Origin")]


async def _read_body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise TocsinError("invalid_field", "The client went away mid-request.")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise TocsinError("payload_too_large")
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)
