"""The public surface is what was meant: nothing more, nothing missing."""

from __future__ import annotations

import subprocess
import sys

import tocsin
import tocsin.app
import tocsin.broker
import tocsin.client
import tocsin.config
import tocsin.service
import tocsin.store


def test_exported_members() -> None:
    assert sorted(tocsin.__all__) == sorted(
        ["Publisher", "Settings", "Tocsin", "__version__", "create_app", "subscribe"])
    homes = {"Publisher": tocsin.client, "subscribe": tocsin.client, "Settings": tocsin.config,
             "Tocsin": tocsin.service, "create_app": tocsin.app}
    for name, module in homes.items():
        assert getattr(tocsin, name) is getattr(module, name)  # the lazy name is the real one
    assert sorted(tocsin.client.__all__) == sorted([
        # clients
        "AsyncPublisher", "AsyncUserClient", "Publisher", "UserClient", "subscribe",
        # errors
        "AuthenticationError", "ConflictError", "NotFoundError", "RateLimitError",
        "TocsinAPIError", "TocsinConnectionError", "TocsinError", "ValidationError",
        # results and arguments
        "Ack", "Acked", "Defaults", "Digest", "Dnd", "Event", "InboxChange", "Incident",
        "Notification", "NotificationPage", "Policy", "PolicyStep", "Preferences",
        "Priority", "PublishResult", "QuietHours", "SnoozeResult", "Status", "Token",
        "TokenFunction", "TopicEvent", "TopicPage", "TypePreferences", "User",
        # the Literal types an app needs to annotate its own variables
        "Channel", "DigestPeriod", "Transport"])
    for name in tocsin.client.__all__:
        assert hasattr(tocsin.client, name), name
    for error in ("AuthenticationError", "NotFoundError", "ConflictError", "RateLimitError",
                  "ValidationError"):
        assert issubclass(getattr(tocsin.client, error), tocsin.client.TocsinAPIError)
    assert issubclass(tocsin.client.TocsinAPIError, tocsin.client.TocsinError)
    assert issubclass(tocsin.client.TocsinConnectionError, tocsin.client.TocsinError)
    assert "store_from_url" in tocsin.store.__all__ and "Store" in tocsin.store.__all__
    assert "broker_from_url" in tocsin.broker.__all__ and "Broker" in tocsin.broker.__all__


def test_importing_tocsin_does_not_load_the_server() -> None:
    code = "import sys, tocsin; print('fastapi' in sys.modules, 'sqlalchemy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.split() == ["False", "False"]


def test_backends_are_chosen_by_url_scheme() -> None:
    import pytest

    from tocsin.broker import broker_from_url
    from tocsin.store import store_from_url

    assert type(broker_from_url("memory://")).__name__ == "MemoryBroker"
    assert type(broker_from_url("redis://127.0.0.1:6379/0")).__name__ == "RedisBroker"
    assert type(store_from_url("sqlite:///x.db")).__name__ == "SqliteStore"
    assert type(store_from_url("postgresql://u@h/db")).__name__ == "PostgresStore"
    with pytest.raises(ValueError, match="kafka"):
        broker_from_url("kafka://x")
    with pytest.raises(ValueError, match="mysql"):
        store_from_url("mysql://x")
