"""The per-recipient decision: not delivered, silent (and why), or may interrupt;
and the quiet period a silent notification belongs to (for the digest).

Runs inside the group-commit transaction on the preferences read there, so it works
on the stored JSON (plain dicts, no model validation on the hot path).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson

from tocsin.attention.model import (
    DAYS,
    DEFAULT_CHANNELS,
    RANK,
    hhmm,
    zone_of,
)
from tocsin.kernel.channel import ChannelRule
from tocsin.store.batch import Job, PublishJob

SKIP = "preferences"
"""The reason a recipient was not delivered to (``skipped`` in the publish reply)."""
_BUILTIN: dict[str, Any] = {"channels": DEFAULT_CHANNELS, "minPriority": "low",
                            "pushMinPriority": "high"}
QUIET_REASONS = ("dnd", "quiet_hours")

Period = tuple[int, int]
"""(since, until) of a quiet period, ms since the epoch."""
Due = dict[str, int]
"""When a recipient is to be reached beyond the tab: channel name -> due (ms since
the epoch); a channel left out: not by that channel."""


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
          priority: str, now: int, reason: str | None, period: Period | None,
          channels: Sequence[ChannelRule]) -> Due:
    """Whether and when to reach a recipient by each of ``channels`` (the registered
    ones), given the decision ``(reason, period)`` for the tab. Every channel is an
    interruption: never for a type out of the inbox nor below its ``minPriority``;
    the type's ``channels`` must name it; each channel's own rule says when
    (:meth:`ChannelRule.due`: push at once from ``pushMinPriority`` up, email
    ``emailAfter`` seconds after arrival); a quiet period (quiet hours, DND) delays
    them to its end. For ``low`` priority only the least intrusive of the channels
    that would carry it is used (email rather than push: the gentler one)."""
    tp = type_prefs(prefs, defaults, type)
    wanted = tp.get("channels") or ()
    rank = RANK[priority]
    if "inbox" not in wanted or rank < RANK[tp.get("minPriority", "low")]:
        return {}
    start = period[1] if reason in QUIET_REASONS and period is not None else now
    due: Due = {}
    for channel in channels:
        if channel.name in wanted:
            when = channel.due(tp, priority, now, start)
            if when is not None:
                due[channel.name] = when
    if priority == "low" and len(due) > 1:
        gentlest = min((c for c in channels if c.name in due),
                       key=lambda c: c.intrusiveness)
        return {gentlest.name: due[gentlest.name]}
    return due


def attend(jobs: list[Job], rows: dict[str, str], now: int,
           reach_out: dict[int, dict[str, Due]] | None = None,
           channels: Sequence[ChannelRule] = ()
           ) -> dict[tuple[str, int], tuple[int, int]]:
    """Decide for every recipient of the batch's publishes given the preference rows
    read for them (``""``: the publisher defaults): sets each job's ``skipped`` and
    ``silent``; returns the quiet periods touched, ``(user, until) -> (since, n)``.
    With ``reach_out``, also fills it: job index -> user -> :data:`Due`, for the
    recipients the preferences let Tocsin reach beyond the tab by ``channels``."""
    defaults = orjson.loads(rows[""]) if "" in rows else None
    cache: dict[str, dict[str, Any]] = {}
    builtin: dict[str, Due] = {}
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
                    # the built-in preferences depend on the priority alone: one reach
                    # per priority in the batch, shared (read, never changed)
                    due = builtin.get(note.priority)
                    if due is None:
                        due = builtin[note.priority] = reach(
                            None, None, note.type, note.priority, now, None, None, channels)
                    if due:
                        reach_out.setdefault(i, {})[u] = due
                continue
            reason, period = decide(prefs, defaults, note.type, note.priority, now)
            if reason == "skip" and job.always_inbox:  # delivered, silently
                reason = "preferences"
            if reach_out is not None and reason != "skip":
                due = reach(prefs, defaults, note.type, note.priority, now, reason, period,
                            channels)
                if due:
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
