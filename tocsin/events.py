"""The unit of delivery: one event in one stream, and how it crosses the broker.

A *stream* is an ordered log named by a key: ``u:<user>`` for a user's inbox,
``t:<topic>`` for a topic feed. Every event in a stream has a sequence number
(``seq``) that the store allocates; within a stream seqs start at 1, have no
holes, and become visible to readers in seq order (see ``store/base.py``).
The SSE ``id:`` of an event is its seq.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

USER_PREFIX = "u:"
TOPIC_PREFIX = "t:"


def user_stream(user: str) -> str:
    return USER_PREFIX + user


def topic_stream(topic: str) -> str:
    return TOPIC_PREFIX + topic


@dataclass(slots=True)
class StreamEvent:
    """One stored event. ``data`` is the exact JSON text the client receives."""

    stream: str
    seq: int
    name: str
    data: str
    _frame: bytes | None = field(default=None, repr=False, compare=False)
    _chunk: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def frame(self) -> bytes:
        """The SSE frame, encoded once and shared by every connection on the stream."""
        if self._frame is None:
            self._frame = (
                f"id: {self.seq}\nevent: {self.name}\ndata: {self.data}\n\n".encode()
            )
        return self._frame

    @property
    def chunk(self) -> bytes:
        """The frame as one HTTP/1.1 chunk, for writing straight to sockets: framed
        once per event, not once per connection."""
        if self._chunk is None:
            self._chunk = chunked(self.frame)
        return self._chunk


def chunked(data: bytes) -> bytes:
    """``data`` as one chunk of ``Transfer-Encoding: chunked``."""
    return b"%x\r\n%b\r\n" % (len(data), data)


def encode_batch(node: str, events: list[StreamEvent]) -> bytes:
    """Broker wire format: one message carries a batch of events (one publish per batch)."""
    return orjson.dumps(
        {"n": node, "e": [[e.stream, e.seq, e.name, e.data] for e in events]}
    )


def decode_batch(message: bytes) -> tuple[str, list[StreamEvent]]:
    """Inverse of :func:`encode_batch`; raises ``ValueError`` on a malformed message."""
    try:
        obj = orjson.loads(message)
        return str(obj["n"]), [
            StreamEvent(str(s), int(q), str(n), str(d)) for s, q, n, d in obj["e"]
        ]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"malformed broker message: {exc}") from exc
