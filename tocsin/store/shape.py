"""The notification's JSON shape, as the browser sees it, built once per write."""

from __future__ import annotations

from typing import Any

import orjson

from tocsin.store.base import Json, NewNotification


def notification_json(
    id: str, seq: int, note: NewNotification, created_at: int, read_at: int | None = None
) -> Json:
    """The notification as the browser sees it (camelCase, optional fields omitted)."""
    j: Json = {
        "id": id,
        "type": note.type,
        "title": note.title,
        "body": note.body,
        "priority": note.priority,
        "timestamp": created_at,
        "read": read_at is not None,
    }
    if read_at is not None:
        j["readAt"] = read_at
    if note.group_key is not None:
        j["groupKey"] = note.group_key
    if note.url is not None:
        j["url"] = note.url
    if note.actor is not None:
        j["actor"] = note.actor
    if note.source is not None:
        j["source"] = note.source
    if note.data is not None:
        j["data"] = note.data
    if note.expires_at is not None:
        j["expiresAt"] = note.expires_at
    j["eventId"] = str(seq)
    return j


def row_json(r: Any) -> Json:
    note = NewNotification(
        type=r.type, title=r.title, body=r.body, priority=r.priority, group_key=r.group_key,
        url=r.url, actor=r.actor, source=r.source,
        data=orjson.loads(r.data) if r.data is not None else None, expires_at=r.expires_at,
    )
    return notification_json(r.id, r.seq, note, r.created_at, r.read_at)
