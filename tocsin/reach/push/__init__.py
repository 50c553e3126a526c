"""Web Push (RFC 8030, 8291, 8292) to the devices of people whose tab is closed:
``vapid`` (the server's key and signature), ``webpush`` (one encrypted message and
what the push service's answer means), ``service`` (subscriptions and the timers
that send). The local push service for tests and the demo is
``tocsin/devtools/push_service.py``. docs/push.md."""
