"""The chat and webhook channel (docs/webhooks.md), a ``Channel``
(``tocsin/kernel/channel.py``): ``service.py`` (the channel: its rule, the ``webhook``
and ``webhook.send`` timers, targets), ``formats.py`` (the Slack, Discord, Teams and
generic bodies, every text escaped), ``store``/``tables`` (named targets and users'
own, migration 0010), ``routes`` (its API), ``settings`` (its settings and flags).
Requests go through ``tocsin/outbound/`` (the address rule, signing)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tocsin.channels.spec import ChannelSpec
from tocsin.channels.webhook.settings import FLAGS, HELP_PANEL, SECRET_FIELDS, WebhookSettings

if TYPE_CHECKING:
    from tocsin.kernel.channel import Channel


def _build(settings: Any) -> Channel:
    from tocsin.channels.webhook.service import WebhookChannel

    return WebhookChannel(settings)


SPEC = ChannelSpec("webhook", WebhookSettings, FLAGS, _build, HELP_PANEL, SECRET_FIELDS)
