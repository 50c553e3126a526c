"""The channels: ways to reach people whose tab is closed, each an implementation
of ``tocsin.kernel.channel.Channel`` in a folder of its own (``push``, ``email``),
listed in ``registry.py``. Attention's publish hook decides per recipient which of
them carry a notification, and when, and writes their durable timers in the
publish's transaction (``tocsin/attention/hook.py``). docs/reach.md."""
