"""In-memory fakes for the fast test tier: no database, no broker process, no sockets.

- :class:`FakeStore` implements the read side of the ``Store`` protocol that the hub
  and the stream endpoint use (``stream_bounds``, ``heads``, ``events_after``), kept
  honest to ``tocsin/store/base.py``: seqs of a stream start at 1 with no holes,
  each stream gets a random epoch when it is first written, ``pruned_upto`` is the
  newest seq deleted, a stream never written is ``Bounds(0, 0, "")`` and absent from
  ``heads``. Tests write with :meth:`FakeStore.append`, delete with
  :meth:`FakeStore.prune`, swap the database with :meth:`FakeStore.replace` and take
  it away with ``store.down = True`` (every call raises ``StoreUnavailable``).
- :class:`RecordingBroker` wraps a real ``MemoryBroker`` and records what is
  published; ``fail_publishes`` / :meth:`RecordingBroker.go_down` simulate a failed
  publish and an outage (reported through ``on_state`` like a real broker).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from typing import cast

from tocsin.broker.base import BrokerUnavailable, MessageHandler, StateHandler
from tocsin.broker.memory import MemoryBroker
from tocsin.errors import StoreUnavailable
from tocsin.events import StreamEvent
from tocsin.store.base import Bounds, Store


def new_epoch() -> str:
    return os.urandom(4).hex()


@dataclass
class _Stream:
    epoch: str
    events: list[StreamEvent] = field(default_factory=list)
    """Events still kept (seq > pruned_upto), oldest first."""
    head: int = 0
    pruned_upto: int = 0


class FakeStore:
    """The read side of ``Store`` in memory (see the module docstring)."""

    url = "fake://"

    def __init__(self) -> None:
        self._streams: dict[str, _Stream] = {}
        self.down = False
        """While True every call raises ``StoreUnavailable`` (the database is away)."""
        self.calls: list[tuple[str, object]] = []
        """``(method, argument)`` of every read, in order (``heads`` records its keys)."""

    # -- what tests use to shape the "database" ---------------------------------------
    def append(self, stream: str, n: int = 1, name: str = "notification",
               epoch: str | None = None) -> list[StreamEvent]:
        """Commit ``n`` events to ``stream`` (consecutive seqs after its head). ``epoch``
        sets the epoch of a stream written for the first time (random otherwise)."""
        s = self._streams.get(stream)
        if s is None:
            s = self._streams[stream] = _Stream(epoch or new_epoch())
        elif epoch is not None and epoch != s.epoch:
            raise ValueError("a stream's epoch never changes: use replace()")
        out = []
        for _ in range(n):
            s.head += 1
            out.append(StreamEvent(stream, s.head, name, f'{{"n":{s.head}}}', s.epoch))
        s.events.extend(out)
        return out

    def prune(self, stream: str, upto: int) -> None:
        """Delete the stream's events with seq <= ``upto`` (retention)."""
        s = self._streams[stream]
        s.pruned_upto = max(s.pruned_upto, min(upto, s.head))
        s.events = [e for e in s.events if e.seq > s.pruned_upto]

    def replace(self) -> None:
        """A fresh database behind the same address: every stream is gone, and a stream
        written again gets a new epoch and starts at seq 1."""
        self._streams = {}

    def epoch_of(self, stream: str) -> str:
        return self._streams[stream].epoch

    def as_store(self) -> Store:
        """This fake typed as a ``Store``: only the read side above exists, which is all
        the hub and the stream endpoint call (anything else fails loudly)."""
        return cast(Store, self)

    # -- Store protocol (read side) ---------------------------------------------------
    async def _call(self, method: str, arg: object) -> None:
        await asyncio.sleep(0)  # a real store always suspends
        if self.down:
            raise StoreUnavailable("fake store is down")
        self.calls.append((method, arg))

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        await self._call("ping", None)

    async def stream_bounds(self, stream: str) -> Bounds:
        await self._call("stream_bounds", stream)
        s = self._streams.get(stream)
        if s is None:
            return Bounds(0, 0, "")
        return Bounds(s.pruned_upto, s.head, s.epoch)

    async def heads(self, streams: list[str]) -> dict[str, tuple[int, str]]:
        await self._call("heads", tuple(streams))
        return {k: (s.head, s.epoch) for k in streams if (s := self._streams.get(k)) is not None}

    async def events_after(self, stream: str, after: int, limit: int) -> list[StreamEvent]:
        await self._call("events_after", (stream, after, limit))
        s = self._streams.get(stream)
        if s is None:
            return []
        # Fresh objects, as a real store returns: frames are not shared with the caller's.
        return [StreamEvent(e.stream, e.seq, e.name, e.data, e.epoch)
                for e in s.events if e.seq > after][:limit]


class RecordingBroker:
    """A ``Broker`` around a ``MemoryBroker`` that records every publish and can fail."""

    local = True

    def __init__(self, url: str) -> None:
        self.inner = MemoryBroker(url)
        self.url = url
        self.published: list[bytes] = []
        """Messages actually sent (failed publishes are not in it)."""
        self.failed: list[bytes] = []
        self.fail_publishes = 0
        """The next this many publishes raise ``BrokerUnavailable`` (broker still up)."""
        self.is_down = False
        self._on_state: StateHandler | None = None

    async def start(self, on_message: MessageHandler, on_state: StateHandler) -> None:
        self._on_state = on_state

        def receive(message: bytes) -> None:
            if not self.is_down:  # at-most-once: an outage drops messages
                on_message(message)

        await self.inner.start(receive, on_state)

    async def publish(self, message: bytes) -> None:
        if self.is_down or self.fail_publishes > 0:
            self.fail_publishes = max(0, self.fail_publishes - 1)
            self.failed.append(message)
            raise BrokerUnavailable("fake broker refuses the publish")
        self.published.append(message)
        await self.inner.publish(message)

    @property
    def healthy(self) -> bool:
        return not self.is_down and self.inner.healthy

    async def close(self) -> None:
        await self.inner.close()

    def go_down(self) -> None:
        """The subscription is lost: publishes fail and ``on_state(False)`` is reported."""
        self.is_down = True
        assert self._on_state is not None
        self._on_state(False)

    def come_up(self) -> None:
        self.is_down = False
        assert self._on_state is not None
        self._on_state(True)

    def sweep_requests(self) -> list[bytes]:
        return [m for m in self.published if m.startswith(b'{"sweep"')]

    def batches(self) -> list[bytes]:
        return [m for m in self.published if not m.startswith(b'{"sweep"')]
