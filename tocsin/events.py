"""The unit of delivery: one event in one stream, and how it crosses the broker.

A *stream* is an ordered log named by a key: ``u:<user>`` for a user's inbox,
``t:<topic>`` for a topic feed. Every event in a stream has a sequence number
(``seq``) that the store allocates; within a stream seqs start at 1, have no
holes, and become visible to readers in seq order (see ``store/base.py``).
The stream's ``epoch`` (a random tag the database gave the stream when it first
wrote to it) and the seq make the event's id, ``<epoch>-<seq>`` (``tocsin.ids``),
which is its SSE ``id:``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from tocsin import sse
from tocsin.ids import event_id
from tocsin.sse import chunked as chunked  # re-exported: callers import it from here

USER_PREFIX = "u:"
TOPIC_PREFIX = "t:"


def user_stream(user: str) -> str:
    return USER_PREFIX + user


def topic_stream(topic: str) -> str:
    return TOPIC_PREFIX + topic


@dataclass(slots=True)
class StreamEvent:
    """One stored event. ``data`` is the exact JSON text the client receives;
    ``epoch`` is the stream's epoch when the event was written."""

    stream: str
    seq: int
    name: str
    data: str
    epoch: str
    _frame: bytes | None = field(default=None, repr=False, compare=False)
    _chunk: bytes | None = field(default=None, repr=False, compare=False)
    _json: bytes | None = field(default=None, repr=False, compare=False)
    _urgent: bool | None = field(default=None, repr=False, compare=False)

    @property
    def id(self) -> str:
        """The event id clients hold (``<epoch>-<seq>``)."""
        return event_id(self.epoch, self.seq)

    @property
    def frame(self) -> bytes:
        """The SSE frame, encoded once and shared by every connection on the stream."""
        if self._frame is None:
            self._frame = sse.frame(self.name, self.data, self.id)
        return self._frame

    @property
    def chunk(self) -> bytes:
        """The frame as one HTTP/1.1 chunk, for writing straight to sockets: framed
        once per event, not once per connection."""
        if self._chunk is None:
            self._chunk = sse.chunked(self.frame)
        return self._chunk

    @property
    def json_frame(self) -> bytes:
        """The event as one JSON frame ``{stream, id, event, data}`` (WebSocket messages,
        long-poll replies), encoded once and shared like :attr:`frame`."""
        if self._json is None:
            self._json = b'{"stream":%b,"id":"%b","event":"%b","data":%b}' % (
                orjson.dumps(stream_label(self.stream)), self.id.encode(),
                self.name.encode(), self.data.encode())
        return self._json


    @property
    def urgent(self) -> bool:
        """A ``notification`` event whose notification has priority ``urgent``. Parsed
        from ``data`` on first use and cached: only a backed-up connection asks (see
        ``streams/connection.py``), never the fan-out's common path."""
        if self._urgent is None:
            urgent = False
            if self.name == "notification":
                try:
                    obj = orjson.loads(self.data)
                except orjson.JSONDecodeError:
                    obj = None
                urgent = isinstance(obj, dict) and obj.get("priority") == "urgent"
            self._urgent = urgent
        return self._urgent


def stream_label(stream: str) -> str:
    """A stream key as clients name it: ``inbox`` (their own) or ``topic:<name>``."""
    return "inbox" if stream.startswith(USER_PREFIX) else "topic:" + stream[len(TOPIC_PREFIX):]


def encode_batch(node: str, events: list[StreamEvent], sent_at: float | None = None) -> bytes:
    """Broker wire format: one message carries a batch of events (one publish per batch).
    ``sent_at`` (wall-clock seconds of the commit, on sampled batches only: the
    receivers' delivery lag) is the last key, so nodes that do not read it ignore it."""
    obj: dict[str, object] = {
        "n": node, "e": [[e.stream, e.seq, e.name, e.data, e.epoch] for e in events]}
    if sent_at is not None:
        obj["t"] = sent_at
    return orjson.dumps(obj)


def decode_batch(message: bytes) -> tuple[str, list[StreamEvent]]:
    """Inverse of :func:`encode_batch`; raises ``ValueError`` on a malformed message."""
    node, events, _ = decode_timed_batch(message)
    return node, events


def decode_timed_batch(message: bytes) -> tuple[str, list[StreamEvent], float | None]:
    """:func:`decode_batch` with the batch's ``sent_at`` (``None`` if not sampled)."""
    try:
        obj = orjson.loads(message)
        sent_at = obj.get("t")
        return str(obj["n"]), [
            StreamEvent(str(s), int(q), str(n), str(d), str(ep)) for s, q, n, d, ep in obj["e"]
        ], float(sent_at) if sent_at is not None else None
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"malformed broker message: {exc}") from exc
