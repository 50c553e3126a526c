"""Run ``tocsin demo`` as a real process on a free port (for the demo tests and screenshot)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.server import free_port, wait_ready


@dataclass
class DemoProcess:
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_demo(tmp_path: Path, wait: float = 30.0, *, port: int | None = None,
               extra: tuple[str, ...] = (), env: dict[str, str] | None = None) -> DemoProcess:
    """``tocsin demo`` with its database in ``tmp_path`` (a second start on the same
    directory and port is a restart)."""
    port = port or free_port()
    db = tmp_path / "demo.db"
    log_path = tmp_path / f"demo-{time.monotonic_ns()}.log"
    args = [sys.executable, "-m", "tocsin", "demo", "--host", "127.0.0.1", "--port", str(port),
            "--database", f"sqlite+aiosqlite:///{db}", *extra]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", **(env or {})}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, env=env)
    demo = DemoProcess(f"http://127.0.0.1:{port}", proc, log_path)
    try:
        wait_ready(demo.url, proc, demo.log, wait, "tocsin demo")
    except BaseException:
        demo.stop()
        raise
    return demo
