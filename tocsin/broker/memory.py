"""In-process broker: every ``MemoryBroker`` sharing a channel name in this process
receives every message. Crosses no process boundary; it is the embedded default."""

from __future__ import annotations

import asyncio

from tocsin.broker.base import MessageHandler, StateHandler

_channels: dict[str, set[MemoryBroker]] = {}


class MemoryBroker:
    local = True
    """Its peers are in this process (tests' named channels) or there are none."""

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        # memory://name lets tests run several "nodes" in one process.
        self._channel = url.partition("://")[2] or "default"
        self._handler: MessageHandler | None = None

    async def start(self, on_message: MessageHandler, on_state: StateHandler) -> None:
        self._handler = on_message
        _channels.setdefault(self._channel, set()).add(self)
        on_state(True)

    async def publish(self, message: bytes) -> None:
        loop = asyncio.get_running_loop()
        for peer in tuple(_channels.get(self._channel, ())):
            if peer._handler is not None:
                # Deliver on a later loop turn, as a real broker would.
                loop.call_soon(peer._handler, message)

    @property
    def healthy(self) -> bool:
        return self._handler is not None

    async def close(self) -> None:
        _channels.get(self._channel, set()).discard(self)
        self._handler = None
