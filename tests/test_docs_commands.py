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
from typing import Any

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


# -- flags, variables and defaults the documents name ------------------------------------

NOT_TOCSIN_FLAGS = {"--save", "--appendonly",  # redis-server, in the compose file
                    "--factory",  # uvicorn
                    "--no-cache-dir",  # pip
                    "--strict"}  # mypy, in the client docs
"""Double-dash words of the documents that are other programs' flags."""
CLIENT_SIDE_VARIABLES = {"TOCSIN_URL", "TOCSIN_API_KEY"}
"""Variables of ``tocsin send``/``listen`` and the SDK (README.md says so)."""
TEST_VARIABLES = {"TOCSIN_TEST_PG", "TOCSIN_TEST_REDIS", "TOCSIN_REQUIRE_SERVICES"}
"""Variables of the test suite (which services the tests use)."""


def _flags_of_every_command() -> set[str]:
    import typer

    from tocsin.cli import app

    commands: dict[str, Any] = getattr(typer.main.get_command(app), "commands")  # noqa: B009
    flags = {"--help", "--version"}
    # `tocsin bench` passes its arguments to the benchmark (python -m bench)
    for source in (ROOT / "bench").glob("*.py"):
        flags.update(re.findall(r"add_argument\(\s*\"(--[a-z0-9-]+)\"", source.read_text()))
    for command in commands.values():
        for param in command.params:
            flags.update(o for o in (*param.opts, *param.secondary_opts) if o.startswith("--"))
    return flags


def _documented(pattern: str) -> set[tuple[str, str]]:
    found = set()
    for doc in DOCS[:-1]:
        for code in re.findall(r"`([^`]+)`|```[a-z]*\n(.*?)```", doc.read_text(), re.S):
            for word in re.findall(pattern, " ".join(code)):
                found.add((doc.relative_to(ROOT).as_posix(), word))
    return found


def test_every_documented_flag_exists() -> None:
    flags = _flags_of_every_command()
    documented = _documented(r"(?<![\w-])--[a-z][a-z0-9-]*[a-z0-9]")
    assert len(documented) > 40
    unknown = {(doc, flag) for doc, flag in documented
               if flag not in flags and flag not in NOT_TOCSIN_FLAGS
               and not flag.startswith("--tocsin")}  # CSS custom properties (--tocsin-*)
    assert not unknown, unknown


def test_every_documented_variable_exists() -> None:
    from tocsin.config import Settings, env_name

    variables = {env_name(f) for f in Settings.model_fields}
    # (not self.TOCSIN_SERVER: a global of the push docs' service worker)
    documented = _documented(r"(?<![\w.])TOCSIN_[A-Z0-9_]*[A-Z0-9]\b")
    assert len({v for _, v in documented}) > 30
    unknown = {(doc, var) for doc, var in documented
               if var not in variables | CLIENT_SIDE_VARIABLES | TEST_VARIABLES}
    assert not unknown, unknown


def test_the_readme_table_gives_every_default_as_the_code_has_it() -> None:
    """Each row's default (the part before ``;``, e.g. "off; `demo`: on") is
    ``default_text`` of its setting, for every variable the row names."""
    from tocsin.config import Settings, default_text, env_name

    by_variable = {env_name(f): f for f in Settings.model_fields}
    table = (ROOT / "README.md").read_text().split("## Configuration", 1)[1]
    table = table.split("\n## ", 1)[0]
    checked = 0
    for row in table.splitlines():
        cells = [c.strip() for c in row.strip("|").split("|")]
        if len(cells) != 4 or not cells[1].startswith("`TOCSIN_"):
            continue
        variables = re.findall(r"TOCSIN_[A-Z0-9_]+", cells[1])
        defaults = cells[2].split(";")[0].split(" (")[0].split(" / ")
        if len(defaults) != len(variables):
            defaults = defaults * len(variables)
        for variable, text in zip(variables, defaults, strict=True):
            field = by_variable[variable]
            if field == "database_url":  # a path that depends on the machine
                assert "tocsin.db" in text
                continue
            wanted = default_text(field)
            shown = text.strip().strip("`")
            if wanted == "none" and field in ("smtp_from", "public_url"):
                assert shown not in ("", "—"), variable  # derived at start: said how
            elif wanted == "none":
                assert shown == "—", (variable, shown)
            else:
                assert shown == wanted, (variable, shown, wanted)
            checked += 1
    assert checked == len(Settings.model_fields) - 1  # every setting but database_url


def test_the_broker_options_table_is_the_brokers() -> None:
    """docs/deploy.md's Redis options are the ones the broker reads, with its defaults
    (an option it no longer reads, such as ``backlog``, is refused at start)."""
    from tocsin.broker import redis as broker
    from tocsin.redis_url import OWN_OPTIONS

    section = (ROOT / "docs" / "deploy.md").read_text().split("## Redis: the broker", 1)[1]
    rows = re.findall(r"^\| `([a-z_]+)` \| `([^`]+)` \|", section.split("\n## ", 1)[0], re.M)
    assert [name for name, _ in rows] == list(OWN_OPTIONS)
    def seconds(value: float) -> str:
        return f"{value:g}s"

    defaults = {"channel": broker.DEFAULT_CHANNEL,
                "ping_interval": seconds(broker.DEFAULT_PING_INTERVAL_S),
                "ping_timeout": seconds(broker.DEFAULT_PING_TIMEOUT_S),
                "backoff_max": seconds(broker.DEFAULT_BACKOFF_MAX_S)}
    assert dict(rows) == defaults
