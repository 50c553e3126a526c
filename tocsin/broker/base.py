"""The broker seam: how nodes tell each other "something new is in the store".

The store is the source of truth; the broker only carries news fast. A broker
may lose messages (Redis restarts, a partition): nodes recover by asking the
store for stream heads whenever the broker (re)connects or is degraded, so a
lost message delays delivery but never loses an event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

MessageHandler = Callable[[bytes], None]
"""Called on the event loop for each message, in the order the broker delivers them."""

StateHandler = Callable[[bool], None]
"""Called with ``True`` when the broker becomes usable, ``False`` when it is lost."""


class BrokerUnavailable(Exception):
    """The broker cannot take a publish right now (the event is still stored)."""


@runtime_checkable
class Broker(Protocol):
    """Fan-out between nodes: every message published by any node reaches every node.

    Contract:
    - ``publish`` sends one message to every subscribed node (including the
      sender). Messages from one publisher arrive in the order published;
      messages from different publishers may interleave in any order.
    - Delivery is at-most-once: during an outage messages are dropped, and
      ``publish`` raises :class:`BrokerUnavailable` instead of blocking.
    - ``start`` subscribes; the handler runs on the event loop. ``on_state`` is
      called with ``False`` when the subscription is lost and ``True`` each
      time it is (re)established, so the node can catch up from the store.
    - A broker reconnects by itself, with backoff, until ``close``.
    """

    url: str
    local: bool
    """``True`` when every node this broker reaches runs in this process
    (``memory://``): a node then knows all its peers' presence from the start."""

    async def start(self, on_message: MessageHandler, on_state: StateHandler) -> None:
        """Connect and subscribe. Returns once subscribed, or once the first attempt failed
        (then it keeps retrying in the background and reports through ``on_state``)."""
        ...

    async def publish(self, message: bytes) -> None:
        """Send ``message`` to every node. Raises :class:`BrokerUnavailable` when down."""
        ...

    @property
    def healthy(self) -> bool:
        """``True`` while subscribed and able to publish."""
        ...

    async def close(self) -> None:
        """Unsubscribe and release connections. Idempotent."""
        ...
