"""The per-recipient decision: not delivered, silent (and why), or may interrupt;
and the quiet period a silent notification belongs to (for the digest).

Runs inside the group-commit transaction on the preferences read there, so it works
on the stored JSON (plain dicts, no model validation on the hot path).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson

from tocsin.attention.model import (
    DAYS,
    DEFAULT_CHANNELS,
    DEFAULT_EMAIL_AFTER_S,
    RANK,
    hhmm,
    zone_of,
)
from tocsin.store.batch import Job, PublishJob

SKIP = "preferences"
"""The reason a recipient was not delivered to (``skipped`` in the publish reply)."""
_BUILTIN: dict[str, Any] = {"channels": DEFAULT_CHANNELS, "minPriority": "low",
                            "pushMinPriority": "high"}
QUIET_REASONS = ("dnd", "quiet_hours")

Period = tuple[int, int]
"""(since, until) of a quiet period, ms since the epoch."""
Due = tuple[int | None, int | None]
"""When a recipient is to be reached beyond the tab: (push due, email due), ms since
the epoch; ``None``: not by that channel."""


def quiet_window(q: dict[str, Any], now: int) -> Period | None:
    """The quiet-hours window ``now`` falls in, if any: wall-clock times in the
    user's zone, a window belonging to the day it starts on (so one that crosses
    midnight is found from the next day too)."""
    tz = zone_of(q["timezone"])
    start, end = hhmm(q["start"]), hhmm(q["end"])
    days = q.get("days") or DAYS
    today = datetime.fromtimestamp(now / 1000, tz).date()
    for back in (0, 1):
        day = today - timedelta(days=back)
        if DAYS[day.weekday()] not in days:
            continue
        s = datetime.combine(day, start, tz)
        e = datetime.combine(day + timedelta(days=1) if end <= start else day, end, tz)
        since, until = int(s.timestamp() * 1000), int(e.timestamp() * 1000)
        if since <= now < until:
            return since, until
    return None


def type_prefs(prefs: dict[str, Any] | None, defaults: dict[str, Any] | None,
               type: str) -> dict[str, Any]:
    for src in (prefs, defaults):
        if src:
            types = src.get("types") or {}
            found = types.get(type) or types.get("*")
            if found is not None:
                return dict(found)
    return _BUILTIN


def decide(prefs: dict[str, Any] | None, defaults: dict[str, Any] | None, type: str,
           priority: str, now: int) -> tuple[str | None, Period | None]:
    """``(reason, period)``: reason ``"skip"`` (not delivered), a silent reason, or
    ``None`` (may interrupt); ``period`` for the silent reasons ``dnd``/``quiet_hours``."""
    tp = type_prefs(prefs, defaults, type)
    channels = tp.get("channels") or ()
    if "inbox" not in channels:
        return "skip", None
    if "interrupt" not in channels or RANK[priority] < RANK[tp.get("minPriority", "low")]:
        return "preferences", None
    if prefs is None:
        return None, None
    if priority == "urgent" and prefs.get("urgentBypassesQuiet", True):
        return None, None
    dnd = prefs.get("dnd")
    dnd_on = dnd is not None and now < int(dnd["until"])
    q = prefs.get("quietHours")
    window = quiet_window(q, now) if q else None
    if dnd_on:
        assert dnd is not None
        since = int(dnd.get("since") or now)
        until = int(dnd["until"])
        if window is not None:
            since, until = min(since, window[0]), max(until, window[1])
        return "dnd", (since, until)
    if window is not None:
        return "quiet_hours", window
    return None, None


def reach(prefs: dict[str, Any] | None, defaults: dict[str, Any] | None, type: str,
          priority: str, now: int, reason: str | None, period: Period | None) -> Due:
    """Whether and when to reach a recipient by Web Push and by email, given the
    decision ``(reason, period)`` for the tab. Both are interruptions: never below
    the type's ``minPriority``; push from ``pushMinPriority`` up; email
    ``emailAfter`` seconds after arrival (the handler checks it is still unread);
    a quiet period (quiet hours, DND) delays both to its end; never both for
    ``low`` (email only: the gentler one)."""
    tp = type_prefs(prefs, defaults, type)
    channels = tp.get("channels") or ()
    rank = RANK[priority]
    if "inbox" not in channels or rank < RANK[tp.get("minPriority", "low")]:
        return None, None
    push = "push" in channels and rank >= RANK[tp.get("pushMinPriority", "high")]
    email = "email" in channels
    if not (push or email):
        return None, None
    if push and email and priority == "low":
        push = False
    start = period[1] if reason in QUIET_REASONS and period is not None else now
    email_due = None
    if email:
        email_due = max(now + 1000 * int(tp.get("emailAfter", DEFAULT_EMAIL_AFTER_S)), start)
    return (start if push else None), email_due


def attend(jobs: list[Job], rows: dict[str, str], now: int,
           reach_out: dict[int, dict[str, Due]] | None = None
           ) -> dict[tuple[str, int], tuple[int, int]]:
    """Decide for every recipient of the batch's publishes given the preference rows
    read for them (``""``: the publisher defaults): sets each job's ``skipped`` and
    ``silent``; returns the quiet periods touched, ``(user, until) -> (since, n)``.
    With ``reach_out``, also fills it: job index -> user -> :data:`Due`, for the
    recipients the preferences let Tocsin reach beyond the tab."""
    defaults = orjson.loads(rows[""]) if "" in rows else None
    cache: dict[str, dict[str, Any]] = {}
    periods: dict[tuple[str, int], tuple[int, int]] = {}
    for i, job in enumerate(jobs):
        if not isinstance(job, PublishJob):
            continue
        skipped: dict[str, str] = {}
        silent: dict[str, str] = {}
        note = job.note
        for u in job.users:
            raw = rows.get(u) if u else None
            prefs = None
            if raw is not None:
                prefs = cache.get(u)
                if prefs is None:
                    prefs = cache[u] = orjson.loads(raw)
            elif defaults is None:
                if reach_out is not None:
                    due = reach(None, None, note.type, note.priority, now, None, None)
                    if due != (None, None):
                        reach_out.setdefault(i, {})[u] = due
                continue
            reason, period = decide(prefs, defaults, note.type, note.priority, now)
            if reason == "skip" and job.always_inbox:  # delivered, silently
                reason = "preferences"
            if reach_out is not None and reason != "skip":
                due = reach(prefs, defaults, note.type, note.priority, now, reason, period)
                if due != (None, None):
                    reach_out.setdefault(i, {})[u] = due
            if reason is None:
                continue
            if reason == "skip":
                skipped[u] = SKIP
                continue
            silent[u] = reason
            if period is not None:
                since, n = periods.get((u, period[1]), (period[0], 0))
                periods[(u, period[1])] = (since, n + 1)
        job.skipped = skipped or None
        job.silent = silent or None
    return periods
