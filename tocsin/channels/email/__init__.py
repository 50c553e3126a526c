"""The email channel (docs/email.md), a ``Channel`` (``tocsin/kernel/channel.py``):
``service.py`` (the channel: the timers' handlers, users, unsubscribe),
``compose.py`` (the messages), ``smtp.py`` (sending), ``links.py`` (signed
unsubscribe links), ``store``/``tables`` (its rows, migration 0007), ``routes`` (its
API), ``settings`` (its settings and flags). The local SMTP server for tests and the
demo is ``tocsin/devtools/smtp_sink.py``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tocsin.channels.email.links import UNSUBSCRIBE_PATH
from tocsin.channels.email.settings import FLAGS, HELP_PANEL, SECRET_FIELDS, EmailSettings
from tocsin.channels.spec import ChannelSpec

if TYPE_CHECKING:
    from tocsin.kernel.channel import Channel


def _build(settings: Any) -> Channel:
    from tocsin.channels.email.service import EmailChannel

    return EmailChannel(settings)


OTHER_BODIES = (
    # RFC 8058's one-click unsubscribe: a mail provider POSTs
    # ``List-Unsubscribe=One-Click`` form-encoded
    (UNSUBSCRIBE_PATH, frozenset({"application/x-www-form-urlencoded"}),
     "Send the one-click unsubscribe as application/x-www-form-urlencoded."),
)

SPEC = ChannelSpec("email", EmailSettings, FLAGS, _build, HELP_PANEL, SECRET_FIELDS,
                   # the unsubscribe link: its signed token is the credential
                   frozenset({UNSUBSCRIBE_PATH}), OTHER_BODIES)
