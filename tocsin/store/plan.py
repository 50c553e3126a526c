"""What a write will store, worked out in Python before any SQL runs: the seq
allocation statements, the first seq and epoch each stream got, and the rows and
events of a batch. Both write paths (SQLAlchemy in ``sql.py``, the raw SQLite
writer in ``sqlite_writer.py``) use exactly these, so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any, NamedTuple

import orjson

from tocsin.events import StreamEvent, topic_stream, user_stream
from tocsin.ids import event_id, new_id
from tocsin.store.base import Json, NewTopicEvent, PublishResult
from tocsin.store.batch import Job, JobResult, PublishJob, TopicJob
from tocsin.store.shape import notification_json, with_silent
from tocsin.store.tables import EVENT_COLUMNS, NOTE_COLUMNS, upsert_sql

CHUNK = 1000  # rows per multi-row statement: stays under every driver's parameter cap


class Allocation(NamedTuple):
    """Seqs reserved for one stream: the first new seq, and the stream's epoch."""

    first: int
    epoch: str


def chunks(items: Sequence[Any], n: int = CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def upsert_statements(
    counts: dict[str, int], dialect: str, paramstyle: str
) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """The statements reserving ``counts[stream]`` seqs per stream: ``(sql, params)``.

    Keys go in sorted order, so concurrent batches lock stream rows in the same order
    and cannot deadlock each other.
    """
    for chunk in chunks(sorted(counts)):
        params: list[Any] = []
        for k in chunk:
            params += (k, counts[k])
        yield upsert_sql(len(chunk), dialect, paramstyle), tuple(params)


def allocated(rows: Iterable[Sequence[Any]], counts: dict[str, int]) -> dict[str, Allocation]:
    """The allocation statements' ``RETURNING key, last_seq, epoch`` rows as each
    stream's first new seq and epoch."""
    return {key: Allocation(int(head) - counts[key] + 1, epoch) for key, head, epoch in rows}


def stream_counts(jobs: list[Job]) -> dict[str, int]:
    """How many seqs each stream needs for ``jobs``."""
    counts: dict[str, int] = {}
    for job in jobs:
        keys = ([user_stream(u) for u in job.users if not job.skipped or u not in job.skipped]
                if isinstance(job, PublishJob)
                else [topic_stream(job.topic)])
        for key in keys:
            counts[key] = counts.get(key, 0) + 1
    return counts


def activity_json(topic: str, seq: int, epoch: str, event: NewTopicEvent, now: int) -> Json:
    """A topic's ``activity`` event; ``id`` is the event's own id."""
    data: Json = {"id": event_id(epoch, seq), "topic": topic, "type": event.type,
                  "title": event.title, "body": event.body}
    if event.actor is not None:
        data["actor"] = event.actor
    if event.data is not None:
        data["data"] = event.data
    data["timestamp"] = now
    return data


def plan_rows(
    jobs: list[Job], alloc: dict[str, Allocation], now: int, *, positional: bool = False
) -> tuple[list[Any], list[Any], list[JobResult]]:
    """The notification and event rows for ``jobs``, given each stream's allocation
    (seqs consumed in job order), and each job's result. Rows are dicts by column
    name, or with ``positional`` tuples in table column order (``NOTE_COLUMNS``,
    ``EVENT_COLUMNS``: the raw SQLite writer's ``executemany`` with ``?``
    placeholders, which skips a dict lookup per column per row)."""
    next_seq = {key: a.first for key, a in alloc.items()}
    note_rows: list[Any] = []
    event_rows: list[Any] = []
    results: list[JobResult] = []
    for job in jobs:
        if isinstance(job, TopicJob):
            stream = topic_stream(job.topic)
            seq = next_seq[stream]
            next_seq[stream] = seq + 1
            epoch = alloc[stream].epoch
            ev = StreamEvent(stream, seq, "activity",
                             dumps(activity_json(job.topic, seq, epoch, job.event, now)), epoch)
            ev_row = (stream, seq, ev.name, ev.data, now)
            event_rows.append(ev_row if positional
                              else dict(zip(EVENT_COLUMNS, ev_row, strict=True)))
            results.append(ev)
            continue
        note = job.note
        if note.ttl_ms is not None and note.expires_at is None:
            note = replace(note, expires_at=now + note.ttl_ms)
        data_text = dumps(note.data) if note.data is not None else None
        # The notification's JSON but for its id and eventId, encoded once per job:
        # each recipient's text is this with the two spliced in (the same bytes as
        # dumps(notification_json(...)): "id" is its first key, "eventId" its last).
        middle = notification_json("", 0, "", note, now)
        del middle["id"], middle["eventId"]
        inner = dumps(middle)[1:-1]
        ids: dict[str, str] = {}
        out: list[StreamEvent] = []
        skipped, silent = job.skipped or {}, job.silent or {}  # attention
        for u in job.users:
            if u in skipped:
                continue
            reason = silent.get(u) if silent else None
            stream = user_stream(u)
            seq = next_seq[stream]
            next_seq[stream] = seq + 1
            epoch = alloc[stream].epoch
            nid = new_id()
            ids[u] = nid
            if reason is None:
                # both ids are hex digits, '-' and decimal digits: nothing to escape
                text = f'{{"id":"{nid}",{inner},"eventId":"{event_id(epoch, seq)}"}}'
            else:  # attention: silent (docs/attention.md)
                text = dumps(with_silent(notification_json(nid, seq, epoch, note, now), reason))
            # NOTE_COLUMNS order (tables.py)
            row = (nid, u, seq, note.type, note.title, note.body, note.priority,
                   note.group_key, note.url, note.actor, note.source, data_text, now,
                   note.expires_at, None, reason, None, None, None)
            ev_row = (stream, seq, "notification", text, now)  # EVENT_COLUMNS order
            if positional:
                note_rows.append(row)
                event_rows.append(ev_row)
            else:
                note_rows.append(dict(zip(NOTE_COLUMNS, row, strict=True)))
                event_rows.append(dict(zip(EVENT_COLUMNS, ev_row, strict=True)))
            out.append(StreamEvent(stream, seq, "notification", text, epoch))
        results.append(PublishResult(ids=ids, events=out, skipped=job.skipped or None,
                                     silent=job.silent or None))
    return note_rows, event_rows, results
