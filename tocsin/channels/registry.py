"""The registered channels: one line each. Adding a channel is its folder under
``tocsin/channels/``, one line here, its migration and its docs
(docs/ARCHITECTURE.md, "How to add a channel").

The order is the order of their flags in ``--help``; the decision does not depend on
it (for ``low`` priority each channel's ``intrusiveness`` decides)."""

from __future__ import annotations

from tocsin.channels import email, push, webhook
from tocsin.channels.spec import ChannelSpec

CHANNELS: tuple[ChannelSpec, ...] = (
    email.SPEC,
    push.SPEC,
    webhook.SPEC,
)
