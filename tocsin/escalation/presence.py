"""The seam presence plugs into: given users, whether each has a visible tab now
(``None``: unknown). Until presence exists every answer is ``None``; the timeline then
records ``active: null`` and no step is skipped."""

from __future__ import annotations

from typing import Protocol


class Presence(Protocol):
    async def active(self, users: list[str]) -> dict[str, bool | None]: ...


class UnknownPresence:
    async def active(self, users: list[str]) -> dict[str, bool | None]:
        return dict.fromkeys(users)
