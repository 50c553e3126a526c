"""Acknowledge and escalate: policies (publisher), incidents (publisher), and the
subscriber's acknowledgement of a notification that belongs to an incident."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path
from starlette.responses import Response

from tocsin.api.deps import PublisherCaller, Service, SubscriberCaller, json_response
from tocsin.api.notifications import NotificationId
from tocsin.errors import TocsinError
from tocsin.escalation.policy import NAME_RE, Policy
from tocsin.escalation.service import parse_policy
from tocsin.routing import ERRORS
from tocsin.text import Name

router = APIRouter(tags=["escalation"])
PolicyName = Annotated[str, Path(description="letters, digits and _ . : @ -; at most 100")]
IncidentId = Annotated[Name, Path(description="an incident id")]


def _check_name(name: str) -> None:
    if not NAME_RE.fullmatch(name):
        raise TocsinError("invalid_field", "Policy names use letters, digits and _ . : @ -, "
                          "at most 100 characters.", "name")


@router.put("/api/escalation-policies/{name}", responses=ERRORS,
            openapi_extra={"requestBody": {"required": True, "content": {
                "application/json": {"schema": Policy.model_json_schema(by_alias=True)}}}})
async def put_policy(name: PolicyName, _: PublisherCaller, tocsin: Service,
                     body: Annotated[Any, Body()] = None) -> Response:
    """Create or replace a policy: ``{steps: [{targets, waitSeconds,
    skipIfNobodyActive?}], repeat?}``. Incidents already open keep the policy they
    opened with."""
    _check_name(name)
    if not isinstance(body, dict):
        raise TocsinError("invalid_field", "The policy must be a JSON object "
                          "{steps: [{targets, waitSeconds}], repeat}.", "steps")
    policy = parse_policy(body)
    created = await tocsin.escalation.put_policy(name, policy)
    return json_response({"name": name, **policy.wire()}, 201 if created else 200)


@router.get("/api/escalation-policies/{name}", responses=ERRORS)
async def get_policy(name: PolicyName, _: PublisherCaller, tocsin: Service) -> Response:
    _check_name(name)
    policy = await tocsin.escalation.get_policy(name)
    if policy is None:
        raise TocsinError("not_found", "No such escalation policy.")
    return json_response({"name": name, **policy})


@router.delete("/api/escalation-policies/{name}", responses=ERRORS)
async def delete_policy(name: PolicyName, _: PublisherCaller, tocsin: Service) -> Response:
    _check_name(name)
    if not await tocsin.escalation.delete_policy(name):
        raise TocsinError("not_found", "No such escalation policy.")
    return json_response({"name": name, "deleted": True})


@router.get("/api/incidents/{id}", responses=ERRORS)
async def get_incident(id: IncidentId, _: PublisherCaller, tocsin: Service) -> Response:
    """The incident and its timeline: who was notified when, through which step (and
    whether they had a visible tab: ``active``, ``null`` while unknown), who
    acknowledged."""
    found = await tocsin.escalation.describe(id) if len(id) <= 32 else None
    if found is None:
        raise TocsinError("not_found", "No such incident.")
    return json_response(found)


@router.post("/api/notifications/{id}/ack", responses=ERRORS)
async def ack(id: NotificationId, caller: SubscriberCaller, tocsin: Service) -> Response:
    """Acknowledge the incident this notification belongs to, for every recipient
    (each gets an ``acked`` event); acknowledging is not reading. Acknowledging again
    changes nothing."""
    if len(id) > 32:
        raise TocsinError("not_found", "No such notification in an incident.")
    return json_response(await tocsin.escalation.ack(caller.user, id))
