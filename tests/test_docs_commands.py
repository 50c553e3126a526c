"""Every ``curl`` in README.md, docs/*.md and the demo page works when pasted.

The commands are taken from the documents as written (backslash continuations joined),
pointed at a real server on a free port (the documents' hosts are replaced with its URL,
``$PUBLISHER_KEY`` / ``$TOCSIN_API_KEY`` set to its key), run by bash and must answer 2xx.
"""

from __future__ import annotations

import html
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import API_KEY, ServerProcess, start_server
from tests.support.services import need

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
        ROOT / "tocsin" / "web" / "demo" / "index.html"]
HOSTS = re.compile(r"(https?://)?(localhost:8000|127\.0\.0\.1:8000|tocsin\.example\.com|YOUR-TOCSIN)")


def _complete(cmd: str) -> bool:
    try:
        shlex.split(cmd)
    except ValueError:  # an open quote
        return False
    return True


def curl_commands(text: str) -> list[str]:
    """The curl commands in ``text``: each with its continuation lines, comments dropped."""
    lines = text.splitlines()
    found: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        m = re.search(r"(^|>)\s*(curl\s.*)$", line)
        if m:
            cmd = m.group(2)
            # Continue over backslash-newlines and newlines inside a quoted string.
            while (cmd.endswith("\\") or not _complete(cmd)) and i + 1 < len(lines):
                i += 1
                cmd = cmd[:-1] + " " + lines[i].strip() if cmd.endswith("\\") \
                    else cmd + "\n" + lines[i].strip()
            found.append(html.unescape(cmd.split("</code>")[0]))
        i += 1
    return found


COMMANDS = [(doc.relative_to(ROOT).as_posix(), cmd)
            for doc in DOCS for cmd in curl_commands(doc.read_text())]


def test_the_documents_have_curl_commands() -> None:
    assert len(COMMANDS) >= 4, COMMANDS
    assert any("/api/tokens" in c for _, c in COMMANDS)
    assert any("/api/notifications" in c for _, c in COMMANDS)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path_factory.mktemp("docs"))
    yield srv
    srv.stop()


@pytest.mark.parametrize(("doc", "command"), COMMANDS, ids=[f"{d}:{c[:40]}" for d, c in COMMANDS])
def test_documented_curl_works(doc: str, command: str, server: ServerProcess) -> None:
    curl = shutil.which("curl")
    need(curl is not None, "curl")
    cmd = HOSTS.sub(server.url, command)
    env = {**os.environ, "PUBLISHER_KEY": API_KEY, "TOCSIN_API_KEY": API_KEY}
    proc = subprocess.run(["bash", "-c", f'{cmd} -sS -o /dev/stderr -w "%{{http_code}}"'],
                          capture_output=True, text=True, env=env, timeout=30, check=False)
    status = proc.stdout.strip()
    assert proc.returncode == 0 and status.startswith("2"), \
        f"{doc}: {command}\n-> {status} {proc.stderr}"
