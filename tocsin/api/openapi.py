"""The OpenAPI description of the hot routes (``hot_routes.py``), which FastAPI does
not serve and so cannot describe by itself.

The declarations below are never mounted and never run: they only give FastAPI's
schema generator each route's parameters and bodies, from the same models the hot
routes validate with (``PublishIn``) and the same names they read (``Last-Event-ID``,
``lastEventId``, ``token``). ``tests/api/test_openapi.py`` checks the result against
what the routes accept.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from tocsin.api.bulk import BULK_PATH, BulkPublishIn, BulkPublishOut
from tocsin.api.deps import SubscriberCredentials, bearer
from tocsin.api.hot_routes import INBOX_POLL_PATH, INBOX_STREAM_PATH, PUBLISH_PATH
from tocsin.api.models import PublishIn, PublishOut
from tocsin.routing import ERRORS

LastEventIdHeader = Annotated[str | None, Header(
    alias="Last-Event-ID", description="Resume after this event id (sent by EventSource "
    "on its own reconnects; wins over the query parameter).")]
SinceQuery = Annotated[str | None, Query(
    description="The last event id held; absent: from the head now.")]
WaitQuery = Annotated[float, Query(ge=0, description="Seconds to hold the request when "
                                   "nothing is there yet (at most 30).")]
LastEventIdQuery = Annotated[str | None, Query(
    alias="lastEventId", description="Resume after this event id (first connect).")]


def _stream_doc(events: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"content": {"text/event-stream": {}}, "description": f"SSE: {events}"},
            **ERRORS}


def _documented() -> list[APIRoute]:
    router = APIRouter()

    @router.post(PUBLISH_PATH, status_code=201, response_model=PublishOut, responses=ERRORS,
                 tags=["notifications"], summary="Publish")
    async def publish(body: PublishIn, _: Annotated[object, Depends(bearer)]) -> None:
        """Store one notification per recipient (a batched write) and deliver them live.
        201 means stored durably. A repeated ``idempotencyKey`` within 24 h returns the
        original ids and creates nothing; the same key with a different body is 409
        ``conflict``. Publisher API key in the Authorization header."""

    @router.post(BULK_PATH, status_code=200, response_model=BulkPublishOut,
                 response_model_exclude_none=True, responses=ERRORS,
                 tags=["notifications"], summary="Publish in bulk")
    async def publish_bulk(body: BulkPublishIn, _: Annotated[object, Depends(bearer)]
                           ) -> None:
        """Up to 1,000 distinct notifications in one request, each what ``Publish``
        takes (its own recipients, content and ``idempotencyKey``) and validated by the
        same model. 200 once every item is settled, with one result per item, in order:
        ``status`` 201 and the single publish's reply (``ids``, ``skipped``,
        ``silent``, ``incident``), or the status and ``error`` a single publish of that
        item would get (400 invalid item, 409 ``conflict`` for a key reused with another
        body, 503 store unavailable). Items without ``idempotencyKey`` or ``groupKey``
        are stored in shared transactions; the others as single publishes, concurrently
        (so in no particular order among themselves). The request as a whole is refused
        (4xx, nothing stored) when it is not ``{"notifications": [...]}`` with 1 to
        1,000 items, when the items' recipients total over 100,000, or when the body is
        over 16 MiB (413, checked on ``Content-Length`` before reading). With
        ``--rate-publish``, every notification stored is one token."""

    @router.get(INBOX_STREAM_PATH, responses=_stream_doc(
        "notification, read, unread, read_all, deleted, reset"), tags=["notifications"],
        summary="Inbox stream")
    async def inbox_stream(_: SubscriberCredentials, last_event_id: LastEventIdHeader = None,
                           last_event_id_q: LastEventIdQuery = None) -> None:
        """Live events of the caller's inbox, after ``Last-Event-ID`` if given. An id too
        old, never issued, or from another epoch of the stream gets one ``reset`` event."""

    @router.get("/api/topics/{topic}/stream", responses=_stream_doc("activity, reset"),
                tags=["topics"], summary="Topic stream")
    async def topic_stream(
        topic: Annotated[str, Path(description="letters, digits and _ . : @ -; at most 200")],
        _: SubscriberCredentials, last_event_id: LastEventIdHeader = None,
        last_event_id_q: LastEventIdQuery = None,
    ) -> None:
        """Live ``activity`` events, with the same resume rules as the inbox stream."""

    @router.get(INBOX_POLL_PATH, responses=ERRORS, tags=["notifications"],
                summary="Inbox long-poll")
    async def inbox_poll(_: SubscriberCredentials, since: SinceQuery = None,
                         wait: WaitQuery = 25) -> None:
        """``{events: [{stream, id, event, data}], lastEventId}``: the inbox stream's
        events after ``since`` at once if there are any, else those arriving within
        ``wait`` seconds (possibly none). Same ids, events and ``reset`` as the stream;
        ``"expired": true`` when the token expired during the wait."""

    @router.get("/api/topics/{topic}/poll", responses=ERRORS, tags=["topics"],
                summary="Topic long-poll")
    async def topic_poll(
        topic: Annotated[str, Path(description="letters, digits and _ . : @ -; at most 200")],
        _: SubscriberCredentials, since: SinceQuery = None, wait: WaitQuery = 25,
    ) -> None:
        """The topic stream's events, with the same rules as the inbox long-poll."""

    return [r for r in router.routes if isinstance(r, APIRoute)]


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` describe the hot routes beside the framework's own."""

    def schema() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = get_openapi(
                title=app.title, version=app.version, summary=app.summary,
                routes=[*_documented(), *app.routes])
        return app.openapi_schema

    app.openapi = schema  # type: ignore[method-assign]
