"""The hot routes, served as plain ASGI (not through FastAPI): the inbox stream, the
topic streams, ``POST /api/notifications`` and its bulk form (``bulk.py``). They
exist only here; ``openapi.py`` documents them from the same models, and the gate
(``gate.py``) has already admitted the caller (CORS, credentials, body rules) when
they run.

Why outside the framework, measured (ARCHITECTURE.md, "Performance decisions"):
- Thousands of long-lived streams are the server's main load; serving them outside
  the framework's middleware stack keeps each idle stream's suspended call stack
  small and leaves the server's own ``send`` in hand, which the direct-write path
  needs (``streams/direct.py``).
- A single-recipient publish spent most of its CPU in the framework's middleware
  and dependency machinery (server CPU per notification 426 -> 150 us together with
  the SQLite writer thread); here it is the same pydantic model and service call.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

import orjson
from pydantic import ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from tocsin.api.bulk import BULK_PATH, BulkPublish
from tocsin.api.models import PublishIn
from tocsin.api.publishing import publish_body
from tocsin.asgi import Headers, read_body, send_error, send_json
from tocsin.auth import (
    Principal,
    Publisher,
    Subscriber,
    check_topic,
    require_publisher,
    require_subscriber,
)
from tocsin.config import Settings
from tocsin.errors import TocsinError
from tocsin.events import topic_stream, user_stream
from tocsin.ids import Position, parse_position
from tocsin.ratelimit.limits import Limits
from tocsin.service import Tocsin
from tocsin.streams.endpoint import EventStream
from tocsin.streams.poll import LongPoll, parse_wait
from tocsin.streams.ws import Authenticate, RateCheck, WebSocketSession
from tocsin.validation import error_from_validation

log = logging.getLogger("tocsin")


PUBLISH_PATH = "/api/notifications"
INBOX_STREAM_PATH = "/api/notifications/stream"
TOPICS_PREFIX = "/api/topics/"
STREAM_SUFFIX = "/stream"
INBOX_POLL_PATH = "/api/notifications/poll"
POLL_SUFFIX = "/poll"

NEVER_ISSUED = Position("!", -1)
"""What a garbage ``Last-Event-ID`` parses to: never issued, so the client gets ``reset``."""


def parse_last_event_id(raw: str | None) -> Position | None:
    """The client's last event id: ``None`` if absent; :data:`NEVER_ISSUED` if it is
    not one this server could have issued (answered with ``reset``, never an error:
    EventSource resends whatever it last received)."""
    if raw is None or raw.strip() == "":
        return None
    try:
        return parse_position(raw)
    except ValueError:
        return NEVER_ISSUED


def _stream_of(topic: str | None, sub: Subscriber) -> str:
    """The stream a subscriber's stream or poll route reads: its inbox, or a topic it
    may read (``TocsinError`` otherwise: ``invalid_field`` or ``forbidden``)."""
    if topic is None:
        return user_stream(sub.user)
    check_topic(topic, sub)
    return topic_stream(topic)


class HotRoutes:
    def __init__(self, tocsin: Tocsin, settings: Settings, limits: Limits) -> None:
        self.tocsin = tocsin
        self.limits = limits
        self.retry_ms = settings.retry_ms
        self.max_user_streams = settings.max_user_streams

    @staticmethod
    def is_stream_path(path: str) -> bool:
        """The inbox stream or a topic's stream."""
        return path == INBOX_STREAM_PATH or (
            path.startswith(TOPICS_PREFIX) and path.endswith(STREAM_SUFFIX)
            and "/" not in path[len(TOPICS_PREFIX) : -len(STREAM_SUFFIX)])

    def match(self, method: str, path: str, scope: Scope, headers: dict[str, str],
              who: Principal | None, cors: Headers) -> ASGIApp | None:
        """The ASGI app serving this request if it is a hot route (``TocsinError`` if the
        caller may not use it), else ``None``."""
        if method == "GET":
            if path == INBOX_STREAM_PATH:
                return self._stream(None, scope, headers, who, cors)
            if path.startswith(TOPICS_PREFIX) and path.endswith(STREAM_SUFFIX):
                topic = path[len(TOPICS_PREFIX) : -len(STREAM_SUFFIX)]
                if "/" not in topic:
                    return self._stream(topic, scope, headers, who, cors)
            if path == INBOX_POLL_PATH:
                return self._poll(None, scope, who, cors)
            if path.startswith(TOPICS_PREFIX) and path.endswith(POLL_SUFFIX):
                topic = path[len(TOPICS_PREFIX) : -len(POLL_SUFFIX)]
                if "/" not in topic:
                    return self._poll(topic, scope, who, cors)
        elif method == "POST" and path == PUBLISH_PATH:
            return _Publish(self.tocsin, require_publisher(who), cors, self.limits)
        elif method == "POST" and path == BULK_PATH:
            return BulkPublish(self.tocsin, require_publisher(who), cors, self.limits)
        return None

    def _stream(self, topic: str | None, scope: Scope, headers: dict[str, str],
                who: Principal | None, cors: Headers) -> EventStream:
        sub = require_subscriber(who)
        stream = _stream_of(topic, sub)
        raw = headers.get("last-event-id")  # sent by EventSource itself: it wins
        if raw is None and b"lastEventId=" in scope["query_string"]:
            raw = dict(parse_qsl(scope["query_string"].decode("latin-1"))).get("lastEventId")
        # The per-user cap is checked by the stream itself as it registers (no await
        # in between: a rate limiter may await before the stream runs).
        return EventStream(self.tocsin.hub, stream, parse_last_event_id(raw), self.retry_ms,
                           sub.expires_at, list(cors), owner=sub.user,
                           max_open=self.max_user_streams,
                           signals=topic is not None and b"presence=1" in scope["query_string"])


    def _poll(self, topic: str | None, scope: Scope, who: Principal | None,
              cors: Headers) -> LongPoll:
        sub = require_subscriber(who)
        stream = _stream_of(topic, sub)
        query = dict(parse_qsl(scope["query_string"].decode("latin-1")))
        return LongPoll(self.tocsin.hub, stream, parse_last_event_id(query.get("since")),
                        parse_wait(query.get("wait")), sub.expires_at, cors, sub.user,
                        self.max_user_streams)

    def socket(self, who: Subscriber | None, refused: TocsinError | None,
               authenticate: Authenticate, rate: RateCheck) -> WebSocketSession:
        """``GET /api/ws`` (``streams/ws.py``), admitted by ``Gate.admit_socket``."""
        return WebSocketSession(self.tocsin.hub, who, refused, authenticate, rate,
                                self.max_user_streams)


class _Publish:
    __slots__ = ("cors", "limits", "publisher", "tocsin")

    def __init__(self, tocsin: Tocsin, publisher: Publisher, cors: Headers,
                 limits: Limits) -> None:
        self.tocsin, self.publisher, self.cors = tocsin, publisher, cors
        self.limits = limits

    async def charge(self, cost: int) -> None:
        await self.limits.charge(self.publisher, cost)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            raw = await read_body(receive)
            try:
                body = PublishIn.model_validate_json(raw)
            except ValidationError as exc:
                raise error_from_validation(exc.errors(), located=False) from None
            reply = orjson.dumps(await publish_body(
                self.tocsin, self.publisher.id, body,
                self.charge if self.limits.publish is not None else None))
        except TocsinError as err:
            await send_error(send, err, self.cors)
            return
        except Exception:
            log.exception("unhandled error in publish")
            await send_error(send, TocsinError("internal"), self.cors)
            return
        await send_json(send, 201, reply, self.cors)
