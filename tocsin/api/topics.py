"""Topic feeds: the collaborative activity feed every allowed user sees (history and
posting; the live stream is a hot route: ``hot_routes.py``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from starlette.responses import Response

from tocsin.api.deps import AnyCaller, Service, json_response, parse_cursor
from tocsin.api.models import TopicEvent, TopicEventIn, TopicPage
from tocsin.auth import Subscriber, check_topic
from tocsin.routing import ERRORS
from tocsin.store.base import ListQuery, NewTopicEvent

router = APIRouter(prefix="/api/topics", tags=["topics"])
TopicName = Annotated[str, Path(description="letters, digits and _ . : @ -; at most 200")]


@router.post("/{topic}/events", status_code=201, response_model=TopicEvent, responses=ERRORS)
async def post_event(
    topic: TopicName, body: TopicEventIn, caller: AnyCaller, tocsin: Service
) -> Response:
    """Append an activity event. A user posting is always its own ``actor``."""
    check_topic(topic, caller)
    actor = caller.user if isinstance(caller, Subscriber) else body.actor
    ev = await tocsin.add_topic_event(
        topic, NewTopicEvent(type=body.type, title=body.title, body=body.body, actor=actor,
                             data=body.data)
    )
    return Response(ev.data.encode(), status_code=201, media_type="application/json")


@router.get("/{topic}/events", response_model=TopicPage, responses=ERRORS)
async def history(
    topic: TopicName,
    caller: AnyCaller,
    tocsin: Service,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: str | None = None,
    since: str | None = None,
) -> Response:
    """History newest first (oldest first with ``since``), within the retention period."""
    check_topic(topic, caller)
    page = await tocsin.store.topic_history(
        topic,
        ListQuery(limit=limit, before=parse_cursor(before, "before"),
                  since=parse_cursor(since, "since")),
    )
    return json_response({"items": page.items, "nextCursor": page.next_cursor,
                          "lastEventId": page.last_event_id})
