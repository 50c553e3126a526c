"""An app's integration, as a user writes it: checked with ``mypy --strict`` against
the SDK installed the README's way (tests/client/test_typing.py). Not run."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import assert_type

from tocsin.client import (
    AsyncPublisher,
    AuthenticationError,
    Channel,
    DigestPeriod,
    Event,
    NotFoundError,
    Notification,
    PolicyStep,
    Publisher,
    PublishResult,
    RateLimitError,
    Status,
    TocsinAPIError,
    TocsinConnectionError,
    TocsinError,
    Transport,
    TypePreferences,
    UserClient,
    subscribe,
)


def notify(url: str, key: str) -> PublishResult:
    with Publisher(url, key) as pub:
        result = pub.publish(["alice", "bob"], "Deploy finished", priority="high",
                             data={"build": 42})
        for user, reason in result.skipped.items():
            print(user, "skipped:", reason)
        steps: list[PolicyStep] = [{"targets": ["alice"], "waitSeconds": 300}]
        pub.put_policy("oncall", steps, repeat=1)
        opened = pub.publish([], "Disk full", priority="urgent", escalation="oncall")
        if opened.incident is not None:
            print(pub.incident(opened.incident)["state"])
        pub.update("deploy-42", title="Deploy finished (v2)")
        try:
            pub.retract("deploy-41")
        except NotFoundError as err:
            print(err.status, err.code, err.field)
        except RateLimitError as err:
            print("wait", err.retry_after)
        except TocsinConnectionError as err:
            print("down:", err)
        return result


def inbox(url: str, token: str) -> list[Notification]:
    with UserClient(url, token) as user:
        page = user.notifications(limit=20, unread=True)
        ids = [n["id"] for n in page["items"]]
        user.mark_read(ids[:1])
        if ids:
            user.snooze(ids[-1], timedelta(hours=1))
        prefs = user.preferences()
        user.set_preferences(types=prefs["types"], email_digest="daily")
        count: int = user.unread_count()
        print(count)
        return page["items"]


async def follow(url: str, key: str) -> None:
    async with AsyncPublisher(url, key) as pub:
        async def token() -> str:
            return await pub.token("alice", ttl=600)

        def status(s: Status) -> None:
            print(s.state, s.delay, s.reason)

        try:
            async for event in subscribe(url, token, transport="ws", on_status=status):
                handle(event)
        except AuthenticationError as err:
            print(err.message)
        except TocsinAPIError as err:
            print(err.status)
        except TocsinError:
            raise


def settings(url: str, key: str, token: str) -> None:
    # An app's own variables, annotated with the SDK's Literal types (a bare list of
    # str would not fit TypePreferences["channels"]).
    channels: list[Channel] = ["inbox", "email"]
    period: DigestPeriod = "hourly"
    with Publisher(url, key) as pub:
        pub.set_defaults({"digest": {"channels": channels, "emailAfter": 3600}})
    with UserClient(url, token) as user:
        prefs = user.set_preferences(email_digest=period)
        # The publisher's defaults, typed like the user's own types.
        assert_type(prefs.get("defaults"), dict[str, TypePreferences] | None)


async def both_ways(url: str, token: str) -> None:
    transports: list[Transport] = ["sse", "ws"]
    for transport in transports:
        async for event in subscribe(url, token, transport=transport):
            handle(event)
            break


def handle(event: Event) -> None:
    note = event.notification
    if note is not None:
        print(note["title"], note.get("url"), note["priority"])
    elif event.change is not None:
        print(event.change["ids"], event.change["unreadCount"])
    elif event.acked is not None:
        print(event.acked["incident"], event.acked["by"])
    elif event.digest is not None:
        print(event.digest["count"])


if __name__ == "__main__":
    asyncio.run(follow("http://127.0.0.1:8000", "key"))
