"""``ChannelSpec``: a channel's registration (``registry.py`` lists them), light
enough for the settings and the CLI to import: the channel's settings mixin, its
flags, and how to build it (the implementation of ``tocsin.kernel.channel.Channel``
is imported only then)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tocsin.kernel.channel import Channel

OtherBody = tuple[str, frozenset[str] | None, str]
"""``(path, or a prefix ending in "/"; the media types allowed besides JSON, None:
any; the 415's message)``."""
Flag = tuple[str, str, Any]
"""A flag of ``serve``/``demo``: (settings field, flag, what it takes: durations are
text such as ``15s``)."""


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """A channel's registration (``tocsin/channels/registry.py`` lists them): what the
    settings, the CLI and the assembly point need before anything runs. Importing it
    loads no more than the channel's settings: the channel itself is built by
    :attr:`build`."""

    name: str
    settings: type[Any]
    """Its pydantic settings mixin (``tocsin.config.Settings`` is composed from the
    core settings and every registered mixin; env vars ``TOCSIN_<FIELD>``)."""
    flags: Sequence[Flag]
    """Its flags of ``serve`` and ``demo``, one per field of :attr:`settings`."""
    build: Callable[[Any], Channel]
    """Build the channel from the composed settings (it keeps them and reads its own
    fields when it starts)."""
    help_panel: str | None = None
    """A panel of its own for its flags in ``--help`` (``None``: the main one)."""
    secret_fields: frozenset[str] = frozenset()
    """Its settings never printed back in an error message."""
    open_paths: frozenset[str] = frozenset()
    """Its ``/api/`` routes that take no credential (the gate, ``api/gate.py``: one sent
    anyway is not looked at); the route checks what stands in for one."""
    other_bodies: tuple[OtherBody, ...] = ()
    """Its routes whose bodies may be other than JSON (the gate's ``OTHER_BODIES``)."""
