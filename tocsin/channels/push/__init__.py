"""Web Push (RFC 8030, 8291, 8292) to the devices of people whose tab is closed, a
``Channel`` (``tocsin/kernel/channel.py``): ``vapid`` (the server's key and
signature), ``webpush`` (one encrypted message and what the push service's answer
means), ``service`` (the channel: subscriptions and the timers that send),
``store``/``tables`` (its rows, migration 0007), ``routes`` (its API), ``settings``
(its settings and flags). The local push service for tests and the demo is
``tocsin/devtools/push_service.py``. docs/push.md."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tocsin.channels.push.settings import FLAGS, HELP_PANEL, SECRET_FIELDS, PushSettings
from tocsin.channels.spec import ChannelSpec

if TYPE_CHECKING:
    from tocsin.kernel.channel import Channel


def _build(settings: Any) -> Channel:
    from tocsin.channels.push.service import PushChannel

    return PushChannel(settings)


OPEN_PATHS = frozenset({"/api/push/vapid-public-key", "/api/push/read"})
"""No credential: the VAPID public key, and marking a pushed notification read with
the token it carried (the service worker has no session)."""

SPEC = ChannelSpec("push", PushSettings, FLAGS, _build, HELP_PANEL, SECRET_FIELDS,
                   OPEN_PATHS)
