"""The browser client's types are checked by TypeScript, not by hand.

``tsc -p tests/web`` (strict, ``--checkJs``, nothing emitted) checks the JS modules of
``tocsin/web/static/tocsin`` by their JSDoc, ``usage.ts`` (the public API as
docs/client.md uses it, through the .d.ts files) and ``conformance.ts`` (the .d.ts files
against the JS they describe); ``tsconfig.sw.json`` checks the service worker (sw.js) in
its own global scope (the webworker lib). TypeScript comes from npm, pinned in package.json:

    npm ci --prefix tests/web --no-audit --no-fund

Without node or that install the test skips and says so; with
``TOCSIN_REQUIRE_SERVICES=1`` (CI) it fails instead.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support.services import need

HERE = Path(__file__).parent
TSC = HERE / "node_modules" / "typescript" / "bin" / "tsc"
INSTALL = "npm ci --prefix tests/web --no-audit --no-fund"


def tsc(project: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    need(node is not None, "node (for TypeScript)")
    need(TSC.exists(), f"TypeScript in tests/web/node_modules (install it: {INSTALL})")
    assert node is not None
    return subprocess.run(
        [node, str(TSC), "-p", str(project), "--pretty", "false"],
        capture_output=True, text=True, timeout=300, check=False,
    )


def test_typescript_accepts_the_client_and_its_declarations() -> None:
    proc = tsc(HERE)
    assert proc.returncode == 0, f"tsc -p tests/web failed:\n{proc.stdout}{proc.stderr}"


def test_typescript_accepts_the_service_worker() -> None:
    proc = tsc(HERE / "tsconfig.sw.json")
    assert proc.returncode == 0, (
        f"tsc -p tests/web/tsconfig.sw.json failed:\n{proc.stdout}{proc.stderr}")
