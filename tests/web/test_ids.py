"""The browser client's event-id rules (lib/ids.js), by node's test runner (ids.test.mjs).

Skips without node; fails instead with ``TOCSIN_REQUIRE_SERVICES=1`` (CI).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support.services import need

HERE = Path(__file__).parent


def test_event_id_rules() -> None:
    node = shutil.which("node")
    need(node is not None, "node")
    assert node is not None
    proc = subprocess.run(
        # lib/ids.js is an ES module in a folder without a package.json "type": let node detect it.
        [node, "--experimental-detect-module", "--test", str(HERE / "ids.test.mjs")],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, f"node --test ids.test.mjs failed:\n{proc.stdout}{proc.stderr}"
