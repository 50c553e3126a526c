"""What tests share; look here before writing a helper, and add one here, not in a test
module another test would then import.

- ``wait``: the one wait (``wait_until`` blocking, ``eventually`` awaited,
  ``wait_on_page`` beside a Playwright page) and its converse, ``stays``.
- ``recording``: what every stream reader shares (events, ``wait_for``, ``until``,
  ``close``); ``sse``: the one SSE reader (``StreamReader``, ``open_stream``,
  ``open_frames`` for frames with their own ids, ``replay_to_head``).
- ``clock``: the one fake clock (``--test-clock-file``) and a server on it;
  ``ManualClock`` for code that takes a ``() -> now`` in process.
- ``server``: a real ``tocsin serve`` (``start_server``, ``served``, ``wait_ready``),
  tokens.
- ``services``: PostgreSQL, Redis, Chromium: found or skipped, a database per test.
- ``load``: concurrent publishers, the exact-suffix check, resumes after the fact.
- ``ws``, ``listener``, ``ids``, ``fakes``, ``inprocess``: see each module.
"""
