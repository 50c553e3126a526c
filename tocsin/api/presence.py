"""Presence routes: who is on a topic, where a user is, and a browser reporting its
state (``docs/presence.md``). Answered from the node's in-memory presence table,
which every node keeps for the whole cluster: no database read."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from tocsin.api.deps import AnyCaller, PublisherCaller, Service, SubscriberCaller, json_response
from tocsin.api.topics import TopicName
from tocsin.auth import check_topic
from tocsin.errors import TocsinError
from tocsin.events import topic_stream
from tocsin.routing import ERRORS
from tocsin.text import Name

router = APIRouter(tags=["presence"])
UserName = Annotated[Name, Path(description="a user id (a token's sub)", max_length=200)]


class PresenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: Literal["active", "idle"]


class Member(BaseModel):
    user: str
    state: Literal["active", "idle"]
    since: int


class TopicPresence(BaseModel):
    members: list[Member]


class UserPresence(BaseModel):
    user: str
    state: Literal["active", "idle", "absent"]
    since: int
    topics: list[str]


class OwnPresence(BaseModel):
    state: Literal["active", "idle"]
    since: int


@router.get("/api/topics/{topic}/presence", response_model=TopicPresence, responses=ERRORS)
async def topic_presence(topic: TopicName, caller: AnyCaller, tocsin: Service) -> Response:
    """Who holds the topic's stream open on any node, once each however many tabs:
    ``{members: [{user, state: active|idle, since}]}`` sorted by user; ``since`` (ms)
    is when the member's current state began."""
    check_topic(topic, caller)
    return json_response({"members": tocsin.hub.presence.members(topic_stream(topic))})


@router.get("/api/users/{user}/presence", response_model=UserPresence, responses=ERRORS)
async def user_presence(user: UserName, _: PublisherCaller, tocsin: Service) -> Response:
    """Where a user is (publishers only): ``state`` is ``absent`` when they hold no
    stream anywhere; ``topics`` lists the topics they follow live."""
    state, since, streams = tocsin.hub.presence.user(user)
    topics = [s[2:] for s in streams if s.startswith("t:")]
    return json_response({"user": user, "state": state, "since": since, "topics": topics})


@router.put("/api/presence", response_model=OwnPresence, responses=ERRORS)
async def report_presence(body: PresenceIn, who: SubscriberCaller, tocsin: Service) -> Response:
    """The browser reports the user's state: ``active`` (a visible tab with recent
    input) or ``idle``. One report per browser (the client aggregates its tabs)."""
    if body.state not in ("active", "idle"):  # pragma: no cover - the model checks
        raise TocsinError("invalid_field", "state is active or idle.", "state")
    state, since = tocsin.hub.presence.report(who.user, body.state)
    return json_response({"state": state, "since": since})
