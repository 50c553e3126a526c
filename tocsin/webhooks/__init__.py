"""Event webhooks (docs/webhooks.md, "Event webhooks"): a feature that forwards what
the kernel observes (reads, dismissals, acks, escalations, gone push subscriptions,
email unsubscribes) to the app's backend as signed, durable, at-least-once HTTP
events. ``service.py`` (``EventWebhooks``), ``store``/``tables`` (its rows, migration
0011), ``routes`` (``/api/event-webhooks``), ``settings`` (its settings and flags).
It knows the kernel only through ``kernel.observations``, ``kernel.timers``,
``kernel.db`` and ``kernel.metrics``."""
