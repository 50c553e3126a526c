"""The browser client's event-id rules (lib/ids.js), by node's test runner (ids.test.mjs).

Skips without node; fails instead with ``TOCSIN_REQUIRE_SERVICES=1`` (CI).
"""

from __future__ import annotations

from tests.web.node import run_node_tests


def test_event_id_rules() -> None:
    run_node_tests("ids.test.mjs")
