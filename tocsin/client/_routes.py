"""Every API route the SDK calls, as an :class:`Op`: the request and how its reply is
read. The sync and async clients share these, so they differ only in how they wait."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar, cast

from tocsin.client._http import Call, part
from tocsin.client._models import (
    Ack,
    Defaults,
    Digest,
    DigestPeriod,
    Dnd,
    InboxChange,
    Incident,
    Notification,
    NotificationPage,
    Policy,
    PolicyStep,
    Preferences,
    Priority,
    PublishResult,
    QuietHours,
    SnoozeResult,
    Token,
    TopicEvent,
    TopicPage,
    TypePreferences,
    User,
)

T = TypeVar("T")


def _as_is(reply: Any) -> Any:
    return reply


@dataclass(frozen=True, slots=True)
class Op(Generic[T]):
    call: Call
    read: Callable[[Any], T] = _as_is


def names(value: Sequence[str], what: str) -> list[str]:
    """``value`` as a list of ids; a bare string is refused (iterating it would send each
    of its characters as an id)."""
    if isinstance(value, str | bytes):
        raise TypeError(f"{what} must be a list of str, not a str: use [{value!r}]")
    out = list(value)
    for v in out:
        if not isinstance(v, str):
            raise TypeError(f"{what} must be a list of str, not of {type(v).__name__}")
    return out


def _some(**fields: Any) -> dict[str, Any]:
    """The API's body: the given (not None) fields, mappings copied."""
    return {k: dict(v) if isinstance(v, Mapping) else v
            for k, v in fields.items() if v is not None}


# -- publisher ------------------------------------------------------------------------


def publish(
    recipients: Sequence[str], title: str, *, type: str, body: str, priority: Priority,
    group_key: str | None, url: str | None, actor: str | None, source: str | None,
    data: Mapping[str, Any] | None, ttl: int | None, idempotency_key: str | None,
    escalation: str | None,
) -> Op[PublishResult]:
    # An idempotency key makes a retried publish store once. The server refuses one with
    # `escalation` (an incident is opened once per call), so none is made up then, and
    # such a publish is not repeated once it may have arrived.
    key = idempotency_key
    if key is None and escalation is None:
        key = str(uuid.uuid4())
    people = names(recipients, "recipients")
    # With escalation the policy names the people; extra ones are optional.
    payload = _some(recipients=people if people or escalation is None else None, type=type,
                    title=title, body=body, priority=priority, groupKey=group_key, url=url,
                    actor=actor,
                    source=source, data=data, ttl=ttl, idempotencyKey=key,
                    escalation=escalation)
    return Op(Call("POST", "/api/notifications", payload, repeatable=key is not None),
              PublishResult.from_wire)


def _ids(reply: Any) -> dict[str, str]:
    return dict(reply["ids"])


def update(key: str, *, title: str | None, body: str | None, priority: Priority | None,
           url: str | None, data: Mapping[str, Any] | None) -> Op[dict[str, str]]:
    payload = _some(title=title, body=body, priority=priority, url=url, data=data)
    if not payload:
        raise ValueError("give at least one of title, body, priority, url, data")
    return Op(Call("PATCH", f"/api/notifications/by-key/{part(key)}", payload), _ids)


def retract(key: str) -> Op[dict[str, str]]:
    return Op(Call("DELETE", f"/api/notifications/by-key/{part(key)}"), _ids)


def _topic_path(topic: str) -> str:
    return f"/api/topics/{part(topic)}/events"


def post_event(topic: str, title: str, *, type: str, body: str, actor: str | None,
               data: Mapping[str, Any] | None) -> Op[TopicEvent]:
    # A topic event has no idempotency key: not repeated once it may have arrived.
    payload = _some(type=type, title=title, body=body, actor=actor, data=data)
    return Op(Call("POST", _topic_path(topic), payload, repeatable=False))


def topic_events(topic: str, *, limit: int, before: str | None,
                 since: str | None) -> Op[TopicPage]:
    params = _some(limit=limit, before=before, since=since)
    return Op(Call("GET", _topic_path(topic), params=params))


def token(user: str, topics: Sequence[str] | None, ttl: int) -> Op[Token]:
    body = _some(user=user, ttl=ttl,
                 topics=None if topics is None else names(topics, "topics"))
    return Op(Call("POST", "/api/tokens", body),
              lambda r: Token(str(r["token"]), float(r["expiresAt"]) / 1000))


def put_policy(name: str, steps: Sequence[PolicyStep], repeat: int) -> Op[Policy]:
    body = {"steps": [dict(s) for s in steps], "repeat": repeat}
    return Op(Call("PUT", f"/api/escalation-policies/{part(name)}", body))


def get_policy(name: str) -> Op[Policy]:
    return Op(Call("GET", f"/api/escalation-policies/{part(name)}"))


def delete_policy(name: str) -> Op[None]:
    return Op(Call("DELETE", f"/api/escalation-policies/{part(name)}"), lambda _: None)


def incident(id: str) -> Op[Incident]:
    return Op(Call("GET", f"/api/incidents/{part(id)}"))


def set_defaults(types: Mapping[str, TypePreferences]) -> Op[Defaults]:
    body = {"types": {k: dict(v) for k, v in types.items()}}
    return Op(Call("PUT", "/api/preferences/defaults", body))


def defaults() -> Op[Defaults]:
    return Op(Call("GET", "/api/preferences/defaults"))


def set_user(user: str, email: str | None) -> Op[User]:
    return Op(Call("PUT", f"/api/users/{part(user)}", {"email": email}))


def get_user(user: str) -> Op[User]:
    return Op(Call("GET", f"/api/users/{part(user)}"))


def trail(id: str) -> Op[dict[str, Any]]:
    return Op(Call("GET", f"/api/notifications/{part(id)}/trail"))


def trail_by_key(key: str) -> Op[dict[str, Any]]:
    return Op(Call("GET", "/api/trail", None, {"idempotencyKey": key}))


def stats() -> Op[dict[str, Any]]:
    return Op(Call("GET", "/api/stats"))


def raw(method: str, path: str, json: Any, params: Mapping[str, str | int] | None,
        repeatable: bool | None) -> Op[Any]:
    again = method.upper() == "GET" if repeatable is None else repeatable
    return Op(Call(method.upper(), path, json, params, again))


# -- subscriber (a user's token) ------------------------------------------------------


def notifications(*, limit: int, before: str | None, since: str | None, unread: bool,
                  type: str | None, priority: Priority | None,
                  source: str | None) -> Op[NotificationPage]:
    params = _some(limit=limit, before=before, since=since, type=type, priority=priority,
                   source=source, unread="true" if unread else None)
    return Op(Call("GET", "/api/notifications", params=params))


def unread_count() -> Op[int]:
    return Op(Call("GET", "/api/notifications/unread-count"), lambda r: int(r["unreadCount"]))


def set_read(id: str, read: bool) -> Op[Notification]:
    return Op(Call("PATCH", f"/api/notifications/{part(id)}", {"read": read}))


def read_all(type: str | None, before: str | None) -> Op[InboxChange]:
    return Op(Call("POST", "/api/notifications/read-all", _some(type=type, before=before)))


def dismiss(id: str) -> Op[InboxChange]:
    # Repeated after it may have arrived, it would answer 404 for a dismissal that
    # happened: not retried then.
    return Op(Call("DELETE", f"/api/notifications/{part(id)}", repeatable=False))


def epoch_ms(when: datetime | timedelta | int) -> int:
    """ms since the epoch: a datetime (naive: local time), a delay from now, or ms."""
    if isinstance(when, timedelta):
        when = datetime.now().astimezone() + when
    if isinstance(when, datetime):
        return int(when.timestamp() * 1000)
    if isinstance(when, bool) or not isinstance(when, int):
        raise TypeError("until must be a datetime, a timedelta or ms since the epoch (int)")
    return when


def snooze(id: str, until: datetime | timedelta | int) -> Op[SnoozeResult]:
    return Op(Call("POST", f"/api/notifications/{part(id)}/snooze",
                   {"until": epoch_ms(until)}))


def ack(id: str) -> Op[Ack]:
    return Op(Call("POST", f"/api/notifications/{part(id)}/ack"))


def preferences() -> Op[Preferences]:
    return Op(Call("GET", "/api/preferences"))


def set_preferences(*, types: Mapping[str, TypePreferences] | None,
                    quiet_hours: QuietHours | None, dnd: Dnd | None,
                    urgent_bypasses_quiet: bool, email_digest: DigestPeriod) -> Op[Preferences]:
    body = {"types": {k: dict(v) for k, v in (types or {}).items()},
            "quietHours": None if quiet_hours is None else dict(quiet_hours),
            "dnd": None if dnd is None else dict(dnd),
            "urgentBypassesQuiet": urgent_bypasses_quiet, "emailDigest": email_digest}
    return Op(Call("PUT", "/api/preferences", body))


def digest() -> Op[Digest | None]:
    return Op(Call("GET", "/api/preferences/digest"),
              lambda r: cast("Digest | None", r.get("digest")))
