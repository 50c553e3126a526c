"""Subscriber tokens as clients hold them: a string, or a function the app gives that
returns a fresh one, asked once per token, ahead of its expiry."""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import threading
import time
from collections.abc import Awaitable, Callable

from tocsin.client._errors import check_credential

TokenFunction = Callable[[], "str | Awaitable[str]"]
"""Returns a fresh subscriber token (a plain or an async function)."""
SyncTokenFunction = Callable[[], str]


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT, read without verifying (None if unreadable)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None


class TokenHolder:
    """The current token and when to ask for the next one.

    The next is due ``skew`` seconds before the current one expires, but never earlier
    than three quarters into its life: a 3 s token is renewed 0.75 s before it
    expires, not at once (which asked for every token twice, once more at expiry)."""

    def __init__(self, source: str | Callable[[], object], skew: float) -> None:
        if isinstance(source, str):
            check_credential(source, "token")
            self.function: Callable[[], object] | None = None
            self.value: str | None = source
        else:
            self.function, self.value = source, None
        self.skew = skew
        self._fetched = time.time()

    def set(self, value: object) -> str:
        # Not str(value): a coroutine (an async function given to the sync UserClient),
        # None or bytes went out as "Bearer <coroutine object ...>" and came back as a
        # puzzling 401 "Invalid API key or token".
        if not isinstance(value, str):
            hint = (": an async function needs AsyncUserClient (or subscribe)"
                    if inspect.isawaitable(value) else "")
            if inspect.iscoroutine(value):
                value.close()  # never awaited: no "was never awaited" warning
            raise TypeError(f"the token function must return a str, not "
                            f"{type(value).__name__}{hint}")
        token = check_credential(value, "the token function's token")
        self.value, self._fetched = token, time.time()
        return token

    def expiry(self) -> float | None:
        return None if self.value is None else jwt_expiry(self.value)

    def expired(self) -> bool:
        """The current token is past its ``exp`` (by this machine's clock)."""
        expiry = self.expiry()
        return expiry is not None and expiry <= time.time()

    def needs_fetch(self) -> bool:
        return self.value is None or (self.function is not None and self.expired())

    def due(self) -> bool:
        """The next token is due now."""
        wait = self.renew_in()
        return wait is not None and wait <= 0

    def renew_in(self) -> float | None:
        """Seconds until the next token is due (None: never, e.g. a token string)."""
        expiry = self.expiry()
        if self.function is None or expiry is None:
            return None
        margin = min(self.skew, (expiry - self._fetched) / 4)
        return expiry - margin - time.time()


class SyncTokens(TokenHolder):
    """Shared by a client's threads: one of them asks the function, the others wait
    for its token."""

    def __init__(self, source: str | Callable[[], object], skew: float) -> None:
        super().__init__(source, skew)
        self._lock = threading.Lock()

    def get(self, *, force: bool = False, refused: str | None = None) -> str:
        """The token to send. ``refused``: the token the server just refused (401): a
        new one is fetched unless another caller already replaced it."""
        with self._lock:
            if (force or self.needs_fetch() or self.due()
                    or (refused is not None and refused == self.value)):
                self._fetch()
            assert self.value is not None
            return self.value

    def fetch(self) -> str:
        with self._lock:
            return self._fetch()

    def _fetch(self) -> str:
        if self.function is None:
            assert self.value is not None
            return self.value
        return self.set(self.function())


class AsyncTokens(TokenHolder):
    """Shared by a client's concurrent calls: one of them asks the function, the others
    wait for its token (20 gathered calls on a fresh client made 20 tokens)."""

    def __init__(self, source: str | Callable[[], object], skew: float) -> None:
        super().__init__(source, skew)
        self._lock = asyncio.Lock()

    async def get(self, *, force: bool = False, refused: str | None = None) -> str:
        """The token to send. ``refused``: the token the server just refused (401): a
        new one is fetched unless another call already replaced it."""
        async with self._lock:
            if (force or self.needs_fetch() or self.due()
                    or (refused is not None and refused == self.value)):
                await self._fetch()
            assert self.value is not None
            return self.value

    async def fetch(self) -> str:
        async with self._lock:
            return await self._fetch()

    async def _fetch(self) -> str:
        if self.function is None:
            assert self.value is not None
            return self.value
        got = self.function()
        return self.set(await got if inspect.isawaitable(got) else got)
