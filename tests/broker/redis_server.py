"""A private ``redis-server`` on its own port, for tests that stop, freeze or restart
Redis without disturbing the shared one on 6379."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.support.server import free_port
from tests.support.services import need
from tests.support.wait import wait_until


def need_redis_server() -> None:
    need(shutil.which("redis-server") is not None, "the redis-server binary")


class PrivateRedis:
    def __init__(self, workdir: Path, port: int | None = None,
                 args: list[str] | None = None) -> None:
        self.port = port or free_port()
        self.args = list(args or [])
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self, wait: float = 10.0) -> PrivateRedis:
        log = (self.workdir / f"redis-{self.port}.log").open("ab")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--daemonize", "no",
             "--dir", str(self.workdir), *self.args],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        proc = self.proc

        def answers() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    return s.recv(64).startswith((b"+PONG", b"-NOAUTH"))
            except OSError:
                return False

        wait_until(answers, wait, f"redis-server on {self.port} to start", interval=0.02)
        return self

    def stop(self) -> None:
        """Kill it hard (SIGKILL): connections break, Pub/Sub messages in flight are lost."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        if down_for:
            time.sleep(down_for)
        self.start()

    def freeze(self) -> None:
        """SIGSTOP: the TCP connections stay open but nothing answers (a half-open peer)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def command(self, *args: str) -> bytes:
        """Send one inline command to the server and return the raw reply."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall((" ".join(args) + "\r\n").encode())
            time.sleep(0.05)
            return s.recv(65536)
