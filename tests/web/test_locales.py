"""The shipped catalogues agree with the English one (keys, placeholders, plural forms),
by node's test runner (locales.test.mjs).

Skips without node; fails instead with ``TOCSIN_REQUIRE_SERVICES=1`` (CI).
"""

from __future__ import annotations

from tests.web.node import run_node_tests


def test_catalogues_match_english() -> None:
    run_node_tests("locales.test.mjs")
