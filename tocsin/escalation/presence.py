"""The seam presence plugs into: given users, whether each has a visible tab now
(``None``: unknown). The service passes the hub's presence
(``tocsin.presence.Presence.active``: ``None`` for the first interval after a node
of a cluster starts; never on ``memory://``); :class:`UnknownPresence` (every answer
``None``: no wait cut short, the timeline records ``active: null``) is what an
``Escalation`` built without one uses."""

from __future__ import annotations

from typing import Protocol


class Presence(Protocol):
    async def active(self, users: list[str]) -> dict[str, bool | None]: ...


class UnknownPresence:
    async def active(self, users: list[str]) -> dict[str, bool | None]:
        return dict.fromkeys(users)
