"""Node's test runner over one of this folder's ``*.test.mjs`` files, for the pytest
tests that check the browser client's modules.

Skips without node; fails instead with ``TOCSIN_REQUIRE_SERVICES=1`` (CI).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support.services import need

HERE = Path(__file__).parent


def run_node_tests(script: str) -> None:
    """``node --test <script>``; fails with its output unless every test passed."""
    node = shutil.which("node")
    need(node is not None, "node")
    assert node is not None
    proc = subprocess.run(
        # lib/*.js are ES modules in a folder without a package.json "type": let node
        # detect them.
        [node, "--experimental-detect-module", "--test", str(HERE / script)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, f"node --test {script} failed:\n{proc.stdout}{proc.stderr}"
