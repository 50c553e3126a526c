"""Attention's publish hook (``store/hooks.py``: the store calls it inside its own
transactions, on both write paths): who is skipped or gets it silently, the quiet
periods and their digest timers, and the channels' timers.

The hot path reads the preferences of a batch's recipients with one ``IN`` query
per 1000 recipients (plus the publisher-defaults row, user ``""``) inside the
batch's transaction: no cache, so a ``PUT`` on any node applies to the next batch
on every node. When no row comes back and the built-in preferences reach nobody by
any channel (today: nothing high or urgent), it returns at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from tocsin.attention.decide import QUIET_REASONS, Due, attend, reach
from tocsin.attention.model import RANK
from tocsin.kernel.channel import ChannelRule
from tocsin.store.base import PublishResult
from tocsin.store.batch import Job, JobResult, PublishJob
from tocsin.store.hooks import Dismissed, Many, Steps, in_marks
from tocsin.store.plan import chunks, dumps
from tocsin.store.preferences import DEFAULTS_USER, DIGEST_KIND

_PERIOD_UPSERT = (
    "INSERT INTO tocsin_attention_periods (user_id, until, since, count) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (user_id, until) DO UPDATE "
    "SET count = tocsin_attention_periods.count + excluded.count"
)
TIMER_INSERT = (
    "INSERT INTO tocsin_timers (id, kind, key, payload, due_at, lease_owner, lease_until, "
    "attempts, created_at) VALUES (?, ?, ?, ?, ?, NULL, 0, 0, ?) ON CONFLICT (id) DO NOTHING"
)
_PENDING_DIGEST = (
    "SELECT payload FROM tocsin_timers WHERE kind = ? AND key = ? AND created_at <= ? "
    "ORDER BY created_at DESC LIMIT 1"
)
_PERIOD_FORGET = (
    "UPDATE tocsin_attention_periods SET count = count - 1 "
    "WHERE user_id = ? AND until = ? AND count > 0"
)


def _select_sql(n: int) -> str:
    return ("SELECT user_id, prefs FROM tocsin_preferences WHERE user_id IN ("
            + in_marks(n) + ")")


def _users(jobs: list[Job]) -> list[str]:
    users: dict[str, None] = {DEFAULTS_USER: None}
    for job in jobs:
        if isinstance(job, PublishJob):
            users.update(dict.fromkeys(job.users))
    return list(users) if len(users) > 1 else []


def _writes(periods_: dict[tuple[str, int], tuple[int, int]], now: int
            ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    ups, timers = [], []
    for (user, until), (since, n) in sorted(periods_.items()):
        ups.append((user, until, since, n))
        timers.append((f"digest:{user}:{until}", DIGEST_KIND, user,
                       dumps({"until": until}), until, now))
    return ups, timers


class AttentionHook:
    """The hook the assembly point gives the store (``StoreOptions.hook``), for the
    registered ``channels``."""

    def __init__(self, channels: Sequence[ChannelRule]) -> None:
        self.channels = tuple(channels)
        # the priorities the built-in preferences (no row for anyone) reach beyond the
        # tab by some channel: a batch with none of them and no row costs one query
        self._builtin_reaches = frozenset(
            p for p in RANK if reach(None, None, "", p, 0, None, None, self.channels))

    def decide(self, jobs: list[Job], now: int, clock_now: int) -> Steps:
        """One ``IN`` query per 1000 recipients (plus the defaults row); nothing else
        when no row comes back and the built-in preferences reach nobody; during
        quiet periods a period upsert and a digest timer per (user, period).
        Recipients the preferences let Tocsin reach are kept (``job.reach``) only for
        the channels that can reach them (one ``IN`` query per channel, only when
        there are candidates)."""
        users = _users(jobs)
        if not users:
            return
        rows: dict[str, str] = {}
        for chunk in chunks(users):
            got = yield _select_sql(len(chunk)), tuple(chunk)
            rows.update({str(r[0]): str(r[-1]) for r in got})
        for job in jobs:
            if isinstance(job, PublishJob):
                job.skipped = job.silent = job.reach = None
        if not rows and not self._may_reach(jobs):
            return
        reach_out: dict[int, dict[str, Due]] = {}
        periods_ = attend(jobs, rows, clock_now, reach_out, self.channels)
        if reach_out:
            yield from self._keep_reachable(jobs, reach_out)
        ups, timers = _writes(periods_, now)
        for params in ups:
            yield _PERIOD_UPSERT, params
        for params in timers:
            yield TIMER_INSERT, params

    def _may_reach(self, jobs: list[Job]) -> bool:
        return any(isinstance(j, PublishJob) and j.note.priority in self._builtin_reaches
                   for j in jobs)

    def _keep_reachable(self, jobs: list[Job], reach_out: dict[int, dict[str, Due]]
                        ) -> Steps:
        wanted: dict[str, set[str]] = {c.name: set() for c in self.channels}
        for per_user in reach_out.values():
            for u, due in per_user.items():
                for name in due:
                    wanted[name].add(u)
        have: dict[str, set[str]] = {}
        for channel in self.channels:
            found = have[channel.name] = set()
            for chunk in chunks(sorted(wanted[channel.name])):
                got = yield channel.reachable_sql(len(chunk)), tuple(chunk)
                found.update(str(r[0]) for r in got)
        for i, per_user in reach_out.items():
            kept: dict[str, Due] = {}
            for u, due in per_user.items():
                mine = due  # kept as it is (it may be shared) unless a channel can't
                for name in due:
                    if u not in have[name]:
                        mine = {n: at for n, at in due.items() if u in have[n]}
                        break
                if mine:
                    kept[u] = mine
            job = jobs[i]
            assert isinstance(job, PublishJob)
            job.reach = kept or None

    def after_ids(self, jobs: list[Job], results: list[JobResult], now: int) -> list[Many]:
        """The channels' timers of a batch, once the notification ids are known:
        written in the publish's own transaction, so a notification stored is a
        notification that will be pushed or emailed (or found seen), whichever node
        dies when. Timer ``<channel>:<nid>``, kind ``<channel>``, payload ``{"user"}``."""
        out: list[tuple[Any, ...]] = []
        for job, res in zip(jobs, results, strict=True):
            if (not isinstance(job, PublishJob) or not job.reach
                    or not isinstance(res, PublishResult)):
                continue
            n = 0
            for u, due in job.reach.items():
                nid = res.ids.get(u)
                if nid is None:
                    continue
                payload = dumps({"user": u})
                for name, at in due.items():
                    out.append((f"{name}:{nid}", name, nid, payload, at, now))
                    n += 1
            res.reached = n
        return [(TIMER_INSERT, out)] if out else []

    def dismissed(self, user: str, gone: list[Dismissed]) -> Steps:
        """Each notification ``user`` just dismissed that arrived silently because of a
        quiet period whose digest is not written yet is taken out of that period's
        count. Its period is the user's pending digest timer created last at or before
        the notification (the timer is created with the period's first silent
        notification, in the same transaction, with the same ``now``)."""
        for reason, created_at in gone:
            if reason not in QUIET_REASONS:
                continue
            rows = yield _PENDING_DIGEST, (DIGEST_KIND, user, created_at)
            if not rows:
                continue
            until = int(orjson.loads(rows[0][0])["until"])
            yield _PERIOD_FORGET, (user, until)
