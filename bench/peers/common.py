"""What every peer sends: the same notification / topic-event shape Tocsin sends."""

from __future__ import annotations

import time
from typing import Any


def notification(nid: int, body: dict[str, Any]) -> dict[str, Any]:
    """A notification as the browser sees it (same fields and order as Tocsin)."""
    out: dict[str, Any] = {
        "id": str(nid),
        "type": body.get("type", "info"),
        "title": body.get("title", ""),
        "body": body.get("body", ""),
        "priority": body.get("priority", "medium"),
        "timestamp": int(time.time() * 1000),
        "read": False,
    }
    if body.get("data") is not None:
        out["data"] = body["data"]
    return out


def topic_event(eid: int, topic: str, body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(eid),
        "topic": topic,
        "type": body.get("type", "info"),
        "title": body.get("title", ""),
        "body": body.get("body", ""),
        "timestamp": int(time.time() * 1000),
    }
    if body.get("data") is not None:
        out["data"] = body["data"]
    return out


def query_param(qs: str, name: str) -> str | None:
    for part in qs.split("&"):
        k, _, v = part.partition("=")
        if k == name:
            return v
    return None
