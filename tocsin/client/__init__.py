"""The Python SDK for Tocsin (httpx; SSE through httpx-sse, WebSocket through
``websockets``). See docs/python.md.

    from tocsin.client import Publisher, subscribe

    with Publisher("http://127.0.0.1:8000", api_key) as pub:
        pub.publish(["alice"], "Deploy finished", priority="high")

    async for event in subscribe("http://127.0.0.1:8000", token_function):
        print(event.id, event.event, event.data)
"""

from __future__ import annotations

from tocsin.client._errors import TocsinAPIError
from tocsin.client._publisher import AsyncPublisher, Publisher, Token
from tocsin.client._subscribe import Event, TokenFunction, subscribe

__all__ = ["AsyncPublisher", "Event", "Publisher", "TocsinAPIError", "Token",
           "TokenFunction", "subscribe"]
