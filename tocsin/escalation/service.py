"""Incidents: a publish with ``escalation`` opens one and notifies step 1 at once;
each following step is a durable timer (``tocsin.scheduler``) that notifies the
step's targets unless someone acknowledged; the first ack closes the incident for
everyone and cancels its timers.

Every step notifies every target (inbox, and push/email per their preferences):
the people an incident must reach are exactly the ones without a tab open, so
presence (``skipIfNobodyActive``) only shortens the wait before the next step.
A step that can never run (its stored policy no longer valid) is given up by the
scheduler and the incident ends ``failed`` with the reason.

A step is one timer ``esc:<incident>:<round>:<step>``. Running it (a) marks the step
begun on the incident row, fixing when the next one is due (a retry keeps that
plan), (b) publishes to the step's targets with the idempotency key
``esc:<incident>:<round>:<step>``, (c) records the timeline, and (d) finishes the
timer while adding the next one, in one transaction. A node dying anywhere in
between leaves the timer to be claimed again when its lease expires, and every part
is idempotent, so each step notifies each target once.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from tocsin.errors import TocsinError
from tocsin.escalation.policy import MAX_TARGETS, Policy
from tocsin.escalation.presence import Presence, UnknownPresence
from tocsin.ids import new_id
from tocsin.kernel.observe import Observation
from tocsin.scheduler import NewTimer, Timer
from tocsin.store.base import Json, NewNotification
from tocsin.store.outbox import Happening

if TYPE_CHECKING:
    from tocsin.kernel import Kernel
    from tocsin.store.incidents import Entry, Incident, SqlIncidentStore

log = logging.getLogger("tocsin.escalation")

ROUND = 1000
"""A step's position is ``round * ROUND + step``."""

Poster = Callable[[str, str, Json, int], NewTimer]
"""``(target name, message id, notification JSON, now) -> the timer that posts it``:
what a channel offers a step for the named targets it knows (the webhook channel's
``step_timer``); the timer is written with the step's next one, in one transaction."""


class Escalation:
    """Given the kernel: it stores incidents through ``kernel.db``, runs each step
    as a timer of the kernel's scheduler, and publishes through ``kernel.publish``."""

    def __init__(self, kernel: Kernel, presence: Presence | None = None,
                 posters: Mapping[str, Poster] | None = None) -> None:
        self.kernel = kernel
        self.presence: Presence = presence or UnknownPresence()
        self.posters: Mapping[str, Poster] = posters or {}
        """By channel name, what posts to a step's named targets (``webhooks``: the
        ``webhook`` channel's), given by the assembly point."""
        self._incidents: SqlIncidentStore | None = None

    # -- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        """Register escalation's timer kind on the kernel's scheduler, which claims
        nothing until every feature has registered its own (``Kernel.start_timers``)."""
        from tocsin.store.incidents import TIMER_KIND, SqlIncidentStore
        from tocsin.store.timers import SqlTimerStore

        if not self.kernel.has_database:
            return  # escalation needs the SQL store's tables
        db = self.kernel.db
        self._incidents = SqlIncidentStore(db, SqlTimerStore(db))
        self.kernel.timers.on(TIMER_KIND, self._run_step, give_up=self._failed)

    @property
    def incidents(self) -> SqlIncidentStore:
        if self._incidents is None:
            raise TocsinError("not_found", "Escalation needs a SQL store.")
        return self._incidents

    # -- policies ------------------------------------------------------------------
    async def put_policy(self, name: str, policy: Policy) -> bool:
        return await self.incidents.put_policy(name, policy.wire(), self.kernel.clock())

    async def get_policy(self, name: str) -> Json | None:
        return await self.incidents.get_policy(name)

    async def delete_policy(self, name: str) -> bool:
        return await self.incidents.delete_policy(name)

    # -- incidents -----------------------------------------------------------------
    async def open(self, publisher: str, name: str, recipients: list[str],
                   note: NewNotification,
                   charge: Callable[[int], Awaitable[None]] | None = None
                   ) -> dict[str, object]:
        """Open an incident under policy ``name`` and run its first step now;
        ``charge`` is given the notifications it may make beyond the first (every
        step of every round, nobody acknowledging): the publisher's rate budget."""
        from tocsin.store.incidents import TIMER_KIND, Incident

        raw = await self.incidents.get_policy(name)
        if raw is None:
            raise TocsinError("invalid_field", f"No escalation policy named {name!r}.",
                              "escalation")
        policy = Policy.model_validate(raw)
        if recipients:  # extra targets of step 1
            first = policy.steps[0]
            first.targets = list(dict.fromkeys([*recipients, *first.targets]))
            if len(first.targets) > MAX_TARGETS:
                # refused here: stored, the step could never run (a step has at most
                # MAX_TARGETS targets, and every run validates the stored policy)
                raise TocsinError(
                    "invalid_field", f"An escalation's first step has at most {MAX_TARGETS} "
                    f"targets; policy {name!r} and these recipients make "
                    f"{len(first.targets)}.", "recipients")
        if charge is not None:
            await charge(policy.potential_notifications() - 1)
        id, now = new_id(), self.kernel.clock()
        timer = NewTimer(f"esc:{id}:0:0", TIMER_KIND, id, now, {"round": 0, "step": 0})
        # The first step's timer is stored already leased to this node and fired here:
        # were it stored free, the scheduler's own poll could claim it first and this
        # answer would go out before the step ran (``ids`` empty). If this node dies
        # now, the lease expires and another node runs the step.
        sched = self.kernel.timers
        lease_until = now + sched.lease_ms
        await self.incidents.open_incident(
            Incident(id, name, policy.wire(), dataclasses.asdict(note), publisher, "open",
                     now, now, 0, None, None), timer, sched.owner, lease_until)
        await sched.fire(Timer(timer.id, timer.kind, timer.key, timer.due_at,
                               timer.payload, 1, sched.owner, lease_until))
        ids = {e.user: e.notification_id for e in await self.incidents.timeline(id)
               if e.kind == "notified" and e.round == 0 and e.step == 0
               and e.user and e.notification_id}
        return {"ids": ids, "incident": id}

    async def _run_step(self, timer: Timer) -> list[NewTimer]:
        from tocsin.store.incidents import TIMER_KIND, Entry

        id, rnd, s = timer.key, int(timer.payload["round"]), int(timer.payload["step"])
        inc = await self.incidents.get(id)
        if inc is None or inc.state != "open":
            return []
        policy = Policy.model_validate(inc.policy)
        if rnd > policy.repeat:  # every step ran, nobody acknowledged
            at = self.kernel.clock()
            await self.incidents.record(id, [Entry("exhausted", at, rnd, 0)],
                                        state="exhausted", also=[Happening(
                                            "incident.exhausted", by="system",
                                            detail={"incident": id},
                                            key=f"incident.exhausted:{id}")])
            self.kernel.observations.report([Observation(
                "incident.exhausted", at, by="system", detail={"incident": id})])
            return []
        step = policy.steps[s]
        nr, ns = (rnd, s + 1) if s + 1 < len(policy.steps) else (rnd + 1, 0)
        # Presence first: when every target is known to have no visible tab, the
        # next step is due at once (the incident's ``next.at`` says so) -- but these
        # targets are notified all the same: push and email reach closed tabs.
        # ``None`` (unknown) never shortens the wait.
        active = await self.presence.active(step.targets)
        no_wait = step.skip_if_nobody_active and all(
            active.get(t) is False for t in step.targets)
        begun = await self.incidents.begin_step(
            id, rnd * ROUND + s, self.kernel.clock() + (0 if no_wait else step.wait_seconds * 1000))
        if begun is None:
            return []
        inc, next_at = begun
        due = next_at if next_at is not None else self.kernel.clock()
        result = await self.kernel.publish(
            inc.publisher, step.targets,
            self._step_note(inc, rnd, s, due if nr <= policy.repeat else None,
                            step.targets),
            f"esc:{id}:{rnd}:{s}", always_inbox=True)
        if rnd * ROUND + s > 0 and self.kernel.observations.active:
            # past the first step: the incident escalated to these targets
            self.kernel.observations.report([Observation(
                "incident.escalated", self.kernel.clock(), user, nid, "system",
                {"incident": id, "round": rnd + 1, "step": s + 1})
                for user, nid in result.ids.items()])
        at = self.kernel.clock()
        entries = [Entry("notified", at, rnd, s, user, nid, active.get(user))
                   for user, nid in result.ids.items()]
        posts = self._posts(inc, rnd, s, step.webhooks, at)
        entries += [Entry("posted", at, rnd, s, name) for name in step.webhooks]
        if no_wait:
            entries.append(Entry("waitSkipped", at, rnd, s))
        escalated = [Happening("incident.escalated", user, nid, "system",
                               {"incident": id, "round": rnd + 1, "step": s + 1},
                               key=f"incident.escalated:{id}:{rnd}:{s}:{user}")
                     for user, nid in result.ids.items()] if rnd * ROUND + s > 0 else []
        await self.incidents.record(id, entries, also=escalated)
        self._observe_step(id, rnd, s, result.ids, no_wait, at)
        return [*posts, NewTimer(f"esc:{id}:{nr}:{ns}", TIMER_KIND, id, due,
                                 {"round": nr, "step": ns})]

    def _posts(self, inc: Incident, rnd: int, s: int, webhooks: list[str],
               now: int) -> list[NewTimer]:
        """The timers posting this step to its named webhook targets (their ids are
        the step's: a retried step writes the same ones)."""
        poster = self.posters.get("webhook")
        if not webhooks:
            return []
        if poster is None:
            raise TocsinError("invalid_field", "This node has no webhook channel for the "
                              "step's webhooks.", "webhooks")
        note = dict(inc.note)
        data = dict(note.get("data") or {})
        data["incident"] = inc.id
        data["escalation"] = {"round": rnd + 1, "step": s + 1}
        wire: Json = {"id": inc.id, "type": note.get("type"), "title": note.get("title"),
                      "body": note.get("body"), "priority": note.get("priority"),
                      "url": note.get("url"), "data": data, "timestamp": now}
        return [poster(name, f"esc:{inc.id}:{rnd}:{s}:{name}", wire, now)
                for name in webhooks]

    def _observe_step(self, incident: str, rnd: int, step: int, ids: dict[str, str],
                      no_wait: bool, at: int) -> None:
        """The step for the trail (docs/trail.md): who it notified, and whether its
        wait was skipped because nobody was active."""
        observations = self.kernel.observations
        if not observations.active:
            return
        where = {"incident": incident, "round": rnd + 1, "step": step + 1}
        items = [Observation("escalation.step", at, user, nid, "system",
                             where) for user, nid in ids.items()]
        if no_wait:
            items += [Observation("escalation.skipped", at, user, nid, "system",
                                  {**where, "reason": "nobody_active"})
                      for user, nid in ids.items()]
        observations.report(items)

    async def _failed(self, timer: Timer, reason: str) -> None:
        """The scheduler gave a step up: it can never run. The incident ends
        ``failed``, with the reason, instead of looking open for ever."""
        from tocsin.store.incidents import Entry

        rnd, s = int(timer.payload.get("round", 0)), int(timer.payload.get("step", 0))
        await self.incidents.record(timer.key, [Entry("failed", self.kernel.clock(), rnd, s)],
                                    state="failed", error=reason[:1000])

    @staticmethod
    def _step_note(inc: Incident, rnd: int, step: int, next_at: int | None,
                   targets: list[str]) -> NewNotification:
        fields: dict[str, Any] = dict(inc.note)
        data = dict(fields.get("data") or {})
        data["incident"] = inc.id
        # `targets`: who holds the incident at this step, so a page can say so rather
        # than a body written when it opened ("Alice is on call")
        data["escalation"] = {"round": rnd + 1, "step": step + 1, "nextAt": next_at,
                              "targets": targets}
        fields["data"] = data
        return NewNotification(**fields)

    async def ack(self, user: str, notification_id: str) -> Json:
        incident = await self.incidents.incident_of(user, notification_id)
        if incident is None:
            raise TocsinError("not_found", "No such notification in an incident.")
        inc, events = await self.incidents.ack(incident, user, self.kernel.clock(), also=[
            Happening("notification.acked", user, notification_id, user,
                      {"incident": incident})])
        if events:
            await self.kernel.fan_out(events)
            # the ack that closed the incident (a repeated one changes nothing)
            self.kernel.observations.report([Observation(
                "notification.acked", self.kernel.clock(), user, notification_id, user,
                {"incident": inc.id})])
        return {"incident": inc.id, "state": inc.state, "ackedBy": inc.acked_by,
                "ackedAt": inc.acked_at}

    async def describe(self, id: str) -> Json | None:
        inc = await self.incidents.get(id)
        if inc is None:
            return None
        entries = await self.incidents.timeline(id)
        # The stored policy as it is, never validated again here: an incident whose
        # policy no longer validates (its step was given up) must still be shown.
        steps = inc.policy.get("steps")
        steps = steps if isinstance(steps, list) else []
        repeat = inc.policy.get("repeat")
        repeat = repeat if isinstance(repeat, int) else 0
        nxt: Json | None = None
        if inc.state == "open" and inc.next_step is not None and inc.next_at is not None:
            rnd, step = divmod(inc.next_step, ROUND)
            if step >= len(steps):
                rnd, step = rnd + 1, 0
            nxt = ({"round": rnd + 1, "step": step + 1, "at": inc.next_at}
                   if rnd <= repeat else {"exhaustedAt": inc.next_at})
        out: Json = {
            "id": inc.id, "policy": inc.policy_name, "state": inc.state,
            "createdAt": inc.created_at, "ackedBy": inc.acked_by, "ackedAt": inc.acked_at,
            "next": nxt, "steps": steps, "repeat": repeat,
            "timeline": [_entry_json(e) for e in entries],
        }
        if inc.error is not None:
            out["error"] = inc.error
        return out


def _entry_json(e: Entry) -> Json:
    j: Json = {"kind": e.kind, "at": e.at}
    if e.kind in ("notified", "waitSkipped", "skipped", "failed", "posted"):
        j["round"], j["step"] = e.round + 1, e.step + 1
    if e.kind == "exhausted":
        j["round"] = e.round
    if e.kind == "posted":  # a named webhook target (``Entry.user`` holds its name)
        j["webhook"] = e.user
    elif e.user is not None:
        j["user"] = e.user
    if e.kind == "notified":
        j["notificationId"] = e.notification_id
        j["active"] = e.active
    return j


def parse_policy(raw: object) -> Policy:
    try:
        return Policy.model_validate(raw)
    except ValidationError as exc:
        from tocsin.validation import error_from_validation

        raise error_from_validation(exc.errors(), located=False) from None
