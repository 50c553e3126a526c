"""The shipped catalogues agree with the English one (keys, placeholders, plural forms),
by node's test runner (locales.test.mjs).

Skips without node; fails instead with ``TOCSIN_REQUIRE_SERVICES=1`` (CI).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support.services import need

HERE = Path(__file__).parent


def test_catalogues_match_english() -> None:
    node = shutil.which("node")
    need(node is not None, "node")
    assert node is not None
    proc = subprocess.run(
        [node, "--experimental-detect-module", "--test", str(HERE / "locales.test.mjs")],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, f"node --test locales.test.mjs failed:\n{proc.stdout}{proc.stderr}"
