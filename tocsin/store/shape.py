"""The notification's JSON shape, as the browser sees it, built once per write."""

from __future__ import annotations

from typing import Any

import orjson

from tocsin.ids import event_id
from tocsin.store.base import Json, NewNotification

# Optional fields: (attribute of NewNotification, JSON key), omitted when None.
_OPTIONAL = (
    ("group_key", "groupKey"),
    ("url", "url"),
    ("actor", "actor"),
    ("source", "source"),
    ("data", "data"),
    ("expires_at", "expiresAt"),
)


def notification_json(
    id: str, seq: int, epoch: str, note: NewNotification, created_at: int,
    read_at: int | None = None, group: Json | None = None,
) -> Json:
    """The notification as the browser sees it (camelCase, optional fields omitted).
    ``eventId`` is the id of its ``notification`` event in the user's stream."""
    j: Json = {
        "id": id,
        "type": note.type,
        "title": note.title,
        "body": note.body,
        "priority": note.priority,
        "timestamp": created_at,
        "read": read_at is not None,
        "silent": False,  # attention: with_silent sets the reason
    }
    if read_at is not None:
        j["readAt"] = read_at
    for attr, key in _OPTIONAL:
        value = getattr(note, attr)
        if value is not None:
            j[key] = value
    if group is not None:
        j["group"] = group
    j["eventId"] = event_id(epoch, seq)
    return j


SHOWN_ACTORS = 5


def group_wire(key: str, count: int, actors: list[str]) -> Json:
    """A group as clients get it: the latest ``SHOWN_ACTORS`` actors and ``people``, how
    many distinct actors it has (one person acting twice is one), so a client never
    counts repeat actions as new people (``docs/grouping.md``)."""
    return {"key": key, "count": count, "actors": actors[:SHOWN_ACTORS], "people": len(actors)}


def group_json(key: str | None, count: int | None, actors: str | None) -> Json | None:
    """A grouped notification's ``group`` (``docs/grouping.md``); ``None`` if ungrouped."""
    if key is None or count is None:
        return None
    return group_wire(key, count, orjson.loads(actors) if actors else [])


def with_silent(j: Json, reason: str | None) -> Json:
    """Attention (docs/attention.md): ``silent`` and, when silent, ``silentReason``."""
    if reason is not None:
        j["silent"] = True
        j["silentReason"] = reason
    return j


def row_json(r: Any, epoch: str) -> Json:
    """A ``tocsin_notifications`` row as JSON; ``epoch`` is its user stream's epoch."""
    note = NewNotification(
        type=r.type, title=r.title, body=r.body, priority=r.priority, group_key=r.group_key,
        url=r.url, actor=r.actor, source=r.source,
        data=orjson.loads(r.data) if r.data is not None else None, expires_at=r.expires_at,
    )
    j = with_silent(notification_json(r.id, r.seq, epoch, note, r.created_at, r.read_at,
                                      group_json(r.group_key, r.group_count, r.group_actors)),
                    r.silent_reason)
    if r.snoozed_until is not None:  # only in a listing of snoozed rows
        j["snoozedUntil"] = r.snoozed_until
    return j
