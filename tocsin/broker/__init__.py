"""Fan-out backends, chosen by URL scheme (``memory://``, ``redis://``)."""

from __future__ import annotations

from tocsin.broker.base import Broker, BrokerUnavailable, MessageHandler, StateHandler

__all__ = ["Broker", "BrokerUnavailable", "MessageHandler", "StateHandler", "broker_from_url"]


def broker_from_url(url: str) -> Broker:
    """Build a broker for ``url``; the driver is imported only for the scheme used."""
    scheme = url.partition("://")[0].lower()
    if scheme == "memory":
        from tocsin.broker.memory import MemoryBroker

        return MemoryBroker(url)
    if scheme in ("redis", "rediss", "unix"):
        from tocsin.broker.redis import RedisBroker

        return RedisBroker(url)
    raise ValueError(f"unknown broker URL scheme {scheme!r} in {url!r} (use memory:// or redis://)")
