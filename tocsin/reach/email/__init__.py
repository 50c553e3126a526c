"""The email channel (docs/email.md): ``service.py`` (the timers' handlers, users,
unsubscribe), ``compose.py`` (the messages), ``smtp.py`` (settings and sending),
``links.py`` (signed unsubscribe links). The local SMTP server for tests and the demo
is ``tocsin/devtools/smtp_sink.py``."""
