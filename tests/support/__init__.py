"""What tests share; look here before writing a helper, and add one here, not in a test
module another test would then import.

- ``wait``: the one wait (``wait_until`` blocking, ``eventually`` awaited).
- ``recording``: what every stream reader shares (events, ``wait_for``, ``close``);
  ``sse``: the SSE reader (``StreamReader``, ``open_stream``, ``replay_to_head``).
- ``clock``: the one fake clock (``--test-clock-file``) and a server on it.
- ``server``: a real ``tocsin serve`` (``start_server``, ``served``), tokens.
- ``services``: PostgreSQL, Redis, Chromium: found or skipped, a database per test.
- ``load``: concurrent publishers and the exact-suffix check.
- ``ws``, ``listener``, ``ids``, ``fakes``, ``inprocess``: see each module.
"""
