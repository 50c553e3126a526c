"""Event webhooks (docs/webhooks.md, "Event webhooks"): a feature that forwards what
happens to notifications (reads, dismissals, acks, escalations, gone push
subscriptions, email unsubscribes) to the app's backend as signed, durable,
at-least-once HTTP events, written in the transaction of each change (it is the
database's outbox, ``store/outbox.py``). ``service.py`` (``EventWebhooks``),
``store``/``tables`` (its rows, migration 0011), ``routes``
(``/api/event-webhooks``), ``settings`` (its settings and flags).
It knows the kernel only through ``kernel.timers``, ``kernel.db`` (``outbox``) and
``kernel.metrics``."""
