from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from tests.broker.redis_server import PrivateRedis, need_redis_server
from tests.support.services import REDIS_URL, need_redis
from tests.support.wait import eventually
from tocsin.broker import Broker, broker_from_url


class Recorder:
    """What one broker saw: messages in arrival order and state changes."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.states: list[bool] = []

    def on_message(self, message: bytes) -> None:
        self.messages.append(message)

    def on_state(self, up: bool) -> None:
        self.states.append(up)

    async def wait(self, pred: Callable[[], bool], within: float = 5.0,
                   what: str = "condition") -> None:
        await eventually(pred, within, what=lambda: (
            f"{what}; messages={len(self.messages)} states={self.states}"))


Started = tuple[Broker, Recorder]
MakeBroker = Callable[..., Awaitable[Started]]


def url_for(kind: str, channel: str, base: str = REDIS_URL, **opts: str) -> str:
    if kind == "memory":
        return f"memory://{channel}"
    query = "&".join(f"{k}={v}" for k, v in {"channel": channel, **opts}.items())
    return f"{base}?{query}"


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def kind(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        need_redis()
    return str(request.param)


class Brokers:
    """The brokers one test started, each with its recorder; closed at the test's end."""

    def __init__(self) -> None:
        self.started: list[Broker] = []

    async def start(self, url: str) -> Started:
        broker = broker_from_url(url)
        rec = Recorder()
        await broker.start(rec.on_message, rec.on_state)
        self.started.append(broker)
        return broker, rec

    async def close(self) -> None:
        for b in self.started:
            await b.close()


@pytest.fixture
async def brokers() -> AsyncIterator[Brokers]:
    b = Brokers()
    yield b
    await b.close()


@pytest.fixture
async def make_broker(kind: str, brokers: Brokers) -> MakeBroker:
    """Start brokers of the parametrised kind on one fresh channel (or one given)."""
    channel = f"test-{uuid.uuid4().hex[:12]}"

    async def make(ch: str | None = None) -> Started:
        return await brokers.start(url_for(kind, ch or channel))

    return make


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    need_redis_server()
    server = PrivateRedis(tmp_path).start()
    yield server
    server.stop()
