"""tocsin listen and tocsin send (stdin), run as a user would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tests.support.ids import seq_of
from tests.support.server import ServerProcess, free_port, start_server
from tests.support.wait import wait_until
from tocsin.client import Publisher


def tocsin(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tocsin", *args], input=stdin,
                          capture_output=True, text=True, timeout=60)


class Listener:
    """``tocsin listen`` with its JSON lines collected as they arrive."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "tocsin", "listen", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.lines: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(json.loads(line))

    def wait_for(self, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        def enough() -> bool:
            if len(self.lines) >= count:
                return True
            if self.proc.poll() is not None:  # it will print no more: say why
                raise AssertionError(self.proc.stderr.read() if self.proc.stderr else "")
            return False

        wait_until(enough, timeout, lambda: f"{count} lines; got {self.lines}", 0.05)
        return self.lines

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(15)


def test_listen_prints_json_lines_and_resumes_across_a_server_restart(
        sqlite_server: ServerProcess, tmp_path: Path) -> None:
    srv = sqlite_server
    listener = Listener("--user", "alice", "--since", "0", "--server", srv.url,
                        "--api-key", srv.api_key)
    again: ServerProcess | None = None
    try:
        with Publisher(srv.url, srv.api_key) as pub:
            for i in range(3):
                pub.publish(["alice"], f"n{i}")
        listener.wait_for(3)
        srv.stop()
        db = srv.args[srv.args.index("--database") + 1]
        again = start_server(tmp_path, database=db, port=srv.port)
        with Publisher(again.url, again.api_key) as pub:
            for i in range(3, 6):
                pub.publish(["alice"], f"n{i}")
        lines = listener.wait_for(6)
        time.sleep(0.5)  # nothing more (no duplicate) arrives
        assert listener.interrupt() == 0
    finally:
        if listener.proc.poll() is None:
            listener.proc.kill()
        if again is not None:
            again.stop()
    assert [seq_of(x["id"]) for x in listener.lines] == [1, 2, 3, 4, 5, 6]
    assert [x["data"]["title"] for x in lines] == [f"n{i}" for i in range(6)]
    assert {x["event"] for x in lines} == {"notification"}


def test_listen_to_a_topic_with_short_tokens(sqlite_server: ServerProcess) -> None:
    """Tokens of 2 s: listen mints new ones through the API; nothing lost or repeated."""
    srv = sqlite_server
    listener = Listener("--user", "bob", "--topic", "team:core", "--ttl", "2s", "--json",
                        "--server", srv.url, "--api-key", srv.api_key)
    try:
        with Publisher(srv.url, srv.api_key) as pub:
            time.sleep(1.0)  # listening live (no --since)
            for i in range(10):
                pub.post_event("team:core", f"e{i}", actor="ci")
                time.sleep(0.4)
        listener.wait_for(10)
        time.sleep(0.3)
        assert listener.interrupt() == 0
    finally:
        if listener.proc.poll() is None:
            listener.proc.kill()
    assert [x["data"]["title"] for x in listener.lines] == [f"e{i}" for i in range(10)]
    assert [seq_of(x["id"]) for x in listener.lines] == list(range(1, 11))


def test_listen_pretty_and_errors(sqlite_server: ServerProcess) -> None:
    srv = sqlite_server
    with Publisher(srv.url, srv.api_key) as pub:
        pub.publish(["carol"], "Deploy finished", body="v1.2", priority="high")
    proc = subprocess.Popen([sys.executable, "-m", "tocsin", "listen", "--user", "carol",
                             "--since", "0", "--pretty", "--server", srv.url, "--api-key",
                             srv.api_key], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(15) == 0
    assert "notification" in line and "high" in line and "Deploy finished — v1.2" in line
    assert not line.lstrip().startswith("{")
    bad = tocsin("listen", "--user", "carol", "--server", srv.url, "--api-key",
                 "wrong-key-0123456789")
    assert bad.returncode == 1 and "401" in bad.stderr


def test_send_reads_json_and_json_lines_from_stdin(sqlite_server: ServerProcess) -> None:
    srv = sqlite_server
    common = ("--server", srv.url, "--api-key", srv.api_key)
    one = tocsin("send", *common, stdin=json.dumps(
        {"recipients": ["dan", "eve"], "title": "x", "priority": "high", "groupKey": "g",
         "data": {"n": 1}}))
    assert one.returncode == 0, one.stderr
    assert sorted(line.split("\t")[0] for line in one.stdout.splitlines()) == ["dan", "eve"]
    lines = "\n".join(json.dumps({"recipients": ["dan"], "title": f"t{i}"}) for i in range(3))
    many = tocsin("send", *common, stdin=lines + "\n")
    assert many.returncode == 0 and len(many.stdout.splitlines()) == 3
    with srv.subscriber("dan") as c:
        items = c.get("/api/notifications").json()["items"]
    assert [i["title"] for i in items] == ["t2", "t1", "t0", "x"]
    assert items[3]["groupKey"] == "g" and items[3]["data"] == {"n": 1}
    for text, message in (("", "no notification"), ("{nope", "not JSON"),
                          ('{"title": "x"}', "'recipients' is required"),
                          ('{"recipients": ["a"], "title": "x", "colour": 1}', "colour")):
        out = tocsin("send", *common, stdin=text)
        assert out.returncode == 2 and message in out.stderr, (text, out.stderr)
    half = tocsin("send", "--to", "a", *common)
    assert half.returncode == 2 and "--title" in half.stderr
    invalid = tocsin("send", *common, stdin='{"recipients": ["a"], "title": "x", '
                     '"priority": "nope"}')
    assert invalid.returncode == 1 and "invalid_field" in invalid.stderr


def test_send_and_listen_without_an_api_key_exit_2_at_once(
        sqlite_server: ServerProcess) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TOCSIN_API_KEY"}
    for args in (["send", "--to", "a", "--title", "t"], ["listen", "--user", "a"]):
        started = time.monotonic()
        out = subprocess.run([sys.executable, "-m", "tocsin", *args, "--server",
                              sqlite_server.url], capture_output=True, text=True,
                             timeout=30, env=env)
        # Before: send said "Illegal header value" after its retries; listen hung.
        assert out.returncode == 2 and "TOCSIN_API_KEY" in out.stderr, out.stderr
        assert time.monotonic() - started < 10


def test_listen_says_it_is_retrying_when_the_server_is_unreachable() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "tocsin", "listen", "--user", "a",
                             "--api-key", "k" * 20, "--server",
                             f"http://127.0.0.1:{free_port()}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()  # before: nothing for 25 s
        assert line.startswith("retrying in ") and "connection refused" in line, line
    finally:
        proc.kill()
        proc.wait(10)


def test_listen_help_shows_its_defaults() -> None:
    out = subprocess.run([sys.executable, "-m", "tocsin", "listen", "--help"],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "COLUMNS": "200"})
    assert "pretty on a terminal, JSON lines otherwise" in out.stdout  # rich ate it
    assert "live only" in out.stdout and "[default: 1h]" in out.stdout


def test_send_batch_errors_name_their_line(sqlite_server: ServerProcess) -> None:
    key = ["--server", sqlite_server.url, "--api-key", sqlite_server.api_key]
    batch = '{"recipients": ["a"], "title": "ok"}\n{"recipients": ["a"], "title": ""}\n'
    out = tocsin("send", *key, stdin=batch)
    assert out.returncode == 1 and "line 2" in out.stderr and "title" in out.stderr
    assert out.stdout.count("\t") == 1  # the first was sent
    out = tocsin("send", *key, stdin='{"recipients": 5, "title": "x"}')
    # Before: "'int' object is not iterable".
    assert out.returncode == 2 and "'recipients' must be a user id or a list" in out.stderr
    out = tocsin("send", *key, stdin='{"recipients": ["a"], "title": "x", "ttl": "1h"}')
    assert out.returncode == 2 and "'ttl' must be a JSON int" in out.stderr


def test_send_errors_are_one_line_and_a_bad_flag_exits_2() -> None:
    # Rich broke a message at 80 columns when stderr was a pipe ("... enclosed in
    # double\nquotes"), and an empty stdin said "stdin no notification on standard input".
    key = ["--server", f"http://127.0.0.1:{free_port()}", "--api-key", "k" * 20]
    out = tocsin("send", *key, stdin='{"recipients": ["a"], "title": "ok"}\n{oops\n')
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        "error: stdin line 2: not JSON (Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1))"]
    out = tocsin("send", *key, stdin="")
    assert (out.returncode, out.stderr) == (2, "error: stdin has no notification in it\n")
    # Before: sent, and the server's 400 came back as exit 1 (here: "cannot reach").
    out = tocsin("send", *key, "--to", "a", "--title", "t", "--priority", "bogus")
    assert out.returncode == 2 and "--priority" in out.stderr and "urgent" in out.stderr


def test_token_refuses_what_the_api_refuses() -> None:
    secret = ["--jwt-secret", "s" * 40]
    assert tocsin("token", "", *secret).returncode == 2
    out = tocsin("token", "alice", "--ttl", "0", *secret)
    assert out.returncode == 2 and "--ttl" in out.stderr
    assert tocsin("token", "alice", "--ttl", "1h", *secret).stdout.count(".") == 2


def test_send_on_a_terminal_says_it_is_reading_stdin() -> None:
    import pty
    import select

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "tocsin", "send", "--api-key", "k" * 20,
                             "--server", f"http://127.0.0.1:{free_port()}"],
                            stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    os.close(slave)
    try:
        assert proc.stderr is not None
        ready, _, _ = select.select([proc.stderr], [], [], 30)
        assert ready, "nothing said"  # before: silence, waiting for input
        line = proc.stderr.readline()
        assert "reading notifications from stdin" in line, line
    finally:
        proc.kill()
        proc.wait(10)
        os.close(master)
