"""The runnable examples of docs/python.md run against a real server, as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.server import ServerProcess

DOC = Path(__file__).resolve().parents[2] / "docs" / "python.md"
BLOCK = re.compile(r"<!-- runnable -->\n```python\n(.*?)```", re.DOTALL)


def runnable_blocks() -> list[str]:
    return BLOCK.findall(DOC.read_text())


def test_the_doc_has_runnable_examples() -> None:
    assert len(runnable_blocks()) >= 3


@pytest.mark.parametrize("number", range(len(runnable_blocks())))
def test_example_runs(number: int, sqlite_server: ServerProcess, tmp_path: Path) -> None:
    script = tmp_path / f"example{number}.py"
    script.write_text(runnable_blocks()[number])
    env = {**os.environ, "TOCSIN_URL": sqlite_server.url,
           "TOCSIN_API_KEY": sqlite_server.api_key}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         env=env, timeout=60)
    assert out.returncode == 0, f"example {number}:\n{out.stdout}\n{out.stderr}"
