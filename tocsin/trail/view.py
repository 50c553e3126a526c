"""A notification's trail as the routes answer it (docs/trail.md, "Shape"): what its
row says (stored, the attention decision, grouping, read state, pending channel
timers) merged with the recorded steps, per recipient, in time order."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from tocsin.errors import TocsinError
from tocsin.store import trail as rows
from tocsin.store.trail import NoteRow, Step

if TYPE_CHECKING:
    from tocsin.kernel.kernel import Kernel
    from tocsin.store.db import Database

Json = dict[str, Any]

DEFAULT_WINDOW_MS = 86_400_000
MAX_LIMIT = 200

_WORDS = {"notification.read": "read", "notification.unread": "unread",
          "notification.dismissed": "dismissed", "notification.snoozed": "snoozed",
          "notification.acked": "acknowledged", "incident.escalated": "escalated",
          "incident.exhausted": "escalation exhausted", "stored": "stored"}


def summary(kind: str, detail: Mapping[str, Any]) -> str:
    """A short English line for a step (the console may show it as is)."""
    def said(key: str) -> str:
        return str(detail.get(key, "")).replace("_", " ")

    if kind == "decision":
        reason = said("reason")
        return f"{said('decision')}: {reason}" if reason else said("decision")
    if kind == "grouped":
        return f"grouped into {detail.get('row')}"
    if kind == "stream.live":
        return f"written live over {detail.get('transport')}"
    if kind == "stream.caught_up":
        return f"caught up over {detail.get('transport')}"
    if kind == "escalation.step":
        return f"escalation step {detail.get('step')}"
    if kind == "escalation.skipped":
        return f"escalation step {detail.get('step')} skipped: {said('reason')}"
    if kind in _WORDS:
        return _WORDS[kind]
    channel, _, outcome = kind.partition(".")
    text = f"{channel} {outcome.replace('_', ' ')}".strip()
    for key in ("reason", "status", "reply"):
        if detail.get(key) not in (None, ""):
            return f"{text}: {said(key)}"
    return text


def _step_json(at: int, kind: str, by: str | None, detail: Mapping[str, Any]) -> Json:
    return {"at": at, "kind": kind, "by": by, "detail": dict(detail),
            "summary": summary(kind, detail)}


def _derived(note: NoteRow, recorded: Iterable[Step]) -> list[Json]:
    """What the row says: never written to the trail table."""
    kinds = {s.kind for s in recorded}
    out = [_step_json(note.created_at, "stored", "publisher", {})]
    decision: Json = ({"decision": "silent", "reason": note.silent_reason}
                      if note.silent_reason else {"decision": "delivered"})
    out.append(_step_json(note.created_at, "decision", None, decision))
    if note.group_count and note.group_count > 1:
        out.append(_step_json(note.created_at, "grouped", None,
                              {"row": note.id, "count": note.group_count}))
    # read state: the recorded history when there is one, else the row's current state
    if note.read_at is not None and not kinds & {"notification.read", "notification.unread"}:
        out.append(_step_json(int(note.read_at), "notification.read", note.user, {}))
    if note.snoozed_until is not None and "notification.snoozed" not in kinds:
        out.append(_step_json(note.created_at, "notification.snoozed", note.user,
                              {"until": note.snoozed_until}))
    return out


def _first_write_only(recorded: list[Step]) -> list[Step]:
    """One ``stream.*`` step: the first write (``tocsin_trail_writes`` keeps only the
    first; ``tocsin_trail`` rows from before migration 0012 may hold a later catch-up
    of a copy already written live)."""
    out: list[Step] = []
    written = False
    for s in sorted(recorded, key=lambda s: s.at):  # stable: ties keep their order
        if s.kind.startswith("stream."):
            if written:
                continue
            written = True
        out.append(s)
    return out


def _trail(note: NoteRow, recorded: list[Step]) -> Json:
    recorded = _first_write_only(recorded)
    steps = _derived(note, recorded) + [_step_json(s.at, s.kind, s.by, s.detail)
                                        for s in recorded]
    steps.sort(key=lambda s: s["at"])  # stable: derived first at equal times
    return {"notification": note.id, "type": note.type, "priority": note.priority,
            "createdAt": note.created_at, "recipients": [{"user": note.user, "steps": steps}]}


def _skipped(user: str, steps: list[Json]) -> Json:
    return {"notification": None, "type": None, "priority": None, "createdAt": None,
            "recipients": [{"user": user, "steps": steps}]}


async def _writes(db: Database, ids: list[str]) -> list[tuple[int, str, bool] | None]:
    """The first write of each of ``ids`` (``None``: never written to a stream)."""
    found = await rows.writes_of(db, ids)
    return [found.get(i) for i in ids]


class TrailView:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel

    async def _trails(self, notes: list[NoteRow]) -> list[Json]:
        db = self.kernel.db
        ids = [n.id for n in notes]
        by_note: dict[str, list[Step]] = {}
        for s in await rows.steps_of(db, ids):
            by_note.setdefault(s.notification or "", []).append(s)
        for n, write in zip(notes, await _writes(db, ids), strict=True):
            if write is not None:
                by_note.setdefault(n.id, []).append(rows.write_step(n.id, n.user, write))
        return [_trail(n, by_note.get(n.id, [])) for n in notes]

    async def of_notification(self, nid: str) -> Json:
        db = self.kernel.db
        notes = await rows.notes(db, [nid])
        if not notes:  # dismissed (the row is deleted), or pruned
            steps = await rows.steps_of(db, [nid])
            if not steps:
                raise TocsinError("not_found", "No such notification (or its trail was "
                                  "pruned).")
            (write,) = await _writes(db, [nid])
            if write is not None:
                steps = _first_write_only([*steps, rows.write_step(nid, steps[0].user, write)])
            return {"notification": nid, "type": None, "priority": None, "createdAt": None,
                    "recipients": [{"user": steps[0].user, "steps": [
                        _step_json(s.at, s.kind, s.by, s.detail) for s in steps]}]}
        return (await self._trails(notes))[0]

    async def of_key(self, key: str) -> Json:
        rec = await rows.publish_record(self.kernel.db, key)
        ids = rec.get("ids") if rec is not None else None
        if rec is None or not isinstance(ids, dict):
            raise TocsinError("not_found", "No publish with this idempotency key (records "
                              "are kept for the idempotency window).")
        notes = await rows.notes(self.kernel.db, [str(v) for v in ids.values()])
        order = {str(v): i for i, v in enumerate(ids.values())}
        notes.sort(key=lambda n: order.get(n.id, 0))
        out = await self._trails(notes)
        skipped = rec.get("skipped")
        if isinstance(skipped, dict):
            at = int(rec.get("createdAt") or 0)
            for user, reason in skipped.items():
                out.append(_skipped(str(user), [_step_json(
                    at, "decision", None, {"decision": "skipped", "reason": reason})]))
        return {"notifications": out}

    async def of_user(self, user: str, since: int | None, limit: int) -> Json:
        if since is None:
            since = self.kernel.clock() - DEFAULT_WINDOW_MS
        limit = max(1, min(limit, MAX_LIMIT))
        db = self.kernel.db
        out = await self._trails(await rows.notes_of_user(db, user, since, limit))
        for s in await rows.skipped_of_user(db, user, since, limit):
            out.append(_skipped(user, [_step_json(s.at, s.kind, s.by, s.detail)]))
        out.sort(key=lambda t: -(t["createdAt"] or t["recipients"][0]["steps"][0]["at"]))
        return {"notifications": out[:limit]}
