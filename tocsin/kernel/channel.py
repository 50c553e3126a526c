"""The ``Channel`` seam: a way to reach a person beyond the live stream (Web Push,
email, ...), chosen per recipient at publish time by attention and carried out by a
durable timer. Push and email (``tocsin/channels/``) implement it; the registry
(``tocsin/channels/registry.py``) lists them; the assembly point builds them and
hands attention their rules (docs/ARCHITECTURE.md, "How to add a channel").

Two halves, so each side depends only on what it uses:

- :class:`ChannelRule`: pure, read inside the publish's transaction (the attention
  hook on the group commit's hot path): the channel's name, how intrusive it is,
  when it is due for one recipient, and the query of who can be reached at all.
- :class:`Channel`: the rule plus the running part: its timers (registered on the
  kernel's scheduler in :meth:`Channel.start`), its routes, its metrics.

A channel needs a little of attention when its timer fires (is it still wanted now?
the user's preferences; turning it off for some types): :class:`Attention` below,
implemented by the attention feature and passed in by the assembly point.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from tocsin.store.outbox import Happening

if TYPE_CHECKING:
    from tocsin.kernel.kernel import Kernel
    from tocsin.scheduler import NewTimer

Json = dict[str, Any]


class ChannelRule(Protocol):
    """What the decision and the publish hook know of a channel."""

    @property
    def name(self) -> str:
        """The channel's name in preferences' ``channels``; also its timer kind, and
        the publish writes its timer as ``<name>:<notification id>`` (payload
        ``{"user"}``)."""
        ...

    @property
    def intrusiveness(self) -> int:
        """How much it interrupts (higher: more). For ``low`` priority only the least
        intrusive channel a recipient wants is used (email rather than push)."""
        ...

    def due(self, type_prefs: Mapping[str, Any], priority: str, now: int,
            start: int) -> int | None:
        """When to reach a recipient by this channel (ms since the epoch), or
        ``None``: not by this channel. ``type_prefs``: the effective preferences of
        the notification's type (stored JSON; the type is in the inbox and at or
        above its ``minPriority``, both checked already); ``start``: ``now``, or the
        end of the quiet period (quiet hours, DND) the recipient is in. Pure: it runs
        inside the publish's transaction."""
        ...

    def reachable_sql(self, n: int) -> str:
        """The query (``?`` placeholders, one per user id, ``n`` of them) whose
        first column is each of those users the channel can reach at all (a device,
        an address): it runs on both write paths, inside the publish's transaction."""
        ...


class Attention(Protocol):
    """What a channel asks of attention (implemented by ``tocsin.attention``)."""

    async def still_wanted(self, user: str, nid: str, channel: str) -> Json | None:
        """The notification if ``channel`` should still carry it now; ``None`` if not
        (read, dismissed, expired, or the preferences changed). Raises
        :class:`tocsin.scheduler.RetryLater` during a quiet period."""
        ...

    async def preferences(self, user: str) -> Json | None:
        """``user``'s own stored preferences (wire JSON), ``None`` if never set."""
        ...

    async def turn_off(self, user: str, channel: str, types: Sequence[str],
                       also: Sequence[Happening] = ()) -> bool:
        """Take ``channel`` out of ``types`` in ``user``'s preferences (an
        unsubscribe link); nothing else changes. ``also``: the channel's event of it,
        written to the outbox in the change's transaction; ``True`` if it changed
        anything."""
        ...


class Channel(ChannelRule, Protocol):
    """A channel as the node runs it. Built by the assembly point from the composed
    settings (the channel reads its own mixin's fields), before the store (whose
    publish hook needs the rules)."""

    async def start(self, kernel: Kernel, attention: Attention) -> None:
        """Open its tables (``kernel.db``), register its timer kinds on
        ``kernel.timers`` (before the kernel starts claiming timers) and its metrics
        on ``kernel.metrics.registry``."""
        ...

    async def stop(self) -> None: ...

    def router(self) -> Any:
        """Its FastAPI ``APIRouter`` (mounted by the app), or ``None``. Typed loosely
        so this layer loads no web framework."""
        ...



@runtime_checkable
class StepPoster(Protocol):
    """A channel that also posts to named targets of its own (the webhook channel's
    ``/api/webhook-targets``), offered to escalation's steps by the assembly point."""

    def step_timer(self, target: str, msg_id: str, note: Json, now: int) -> NewTimer:
        """The durable timer posting ``note`` (notification JSON) to ``target``, as
        message ``msg_id`` (stable: its retries and a retried step keep it)."""
        ...


@runtime_checkable
class UserFields(Protocol):
    """A channel that keeps fields of the user record (``PUT/GET /api/users/{user}``,
    ``tocsin/channels/users.py``): the email channel's ``email``, the webhook channel's
    ``webhook``. The route checks every field of a body first, then writes them."""

    @property
    def user_fields(self) -> tuple[str, ...]:
        """The body keys it owns."""
        ...

    def check_user_fields(self, fields: Mapping[str, Any]) -> Any:
        """Its fields of a body (only those present), checked (a 400
        ``TocsinError`` naming the field), in the form :meth:`write_user` takes."""
        ...

    async def write_user(self, user: str, checked: Any) -> Json:
        """Store what :meth:`check_user_fields` returned; the fields as stored."""
        ...

    async def read_user(self, user: str) -> Json | None:
        """Its fields of ``user``'s record; ``None`` if it holds nothing for them."""
        ...
