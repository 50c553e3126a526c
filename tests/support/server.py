"""Run a real Tocsin server process on a random loopback port for a test."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import jwt

from tests.support.services import database_url, drop_pg_schema
from tests.support.wait import wait_until

API_KEY = "test-publisher-key"
JWT_SECRET = "test-jwt-secret-0123456789abcdef0123456789"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def mint(user: str, topics: list[str] | None = None, ttl: int = 3600,
         secret: str = JWT_SECRET) -> str:
    claims: dict[str, object] = {"sub": user, "exp": int(time.time()) + ttl}
    if topics is not None:
        claims["topics"] = topics
    return jwt.encode(claims, secret, algorithm="HS256")


@dataclass
class ServerProcess:
    url: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    api_key: str = API_KEY
    secret: str = JWT_SECRET
    args: list[str] = field(default_factory=list)

    def token(self, user: str, topics: list[str] | None = None, ttl: int = 3600) -> str:
        return mint(user, topics, ttl, self.secret)

    def publisher(self, **kw: object) -> httpx.Client:
        return httpx.Client(base_url=self.url,
                            headers={"Authorization": f"Bearer {self.api_key}"},
                            timeout=10, **kw)  # type: ignore[arg-type]

    def subscriber(self, user: str, topics: list[str] | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url,
                            headers={"Authorization": f"Bearer {self.token(user, topics)}"},
                            timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        try:
            self.terminate(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()


def start_server(
    tmp_path: Path,
    *,
    database: str | None = None,
    broker: str = "memory://",
    extra: list[str] | None = None,
    env: dict[str, str] | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    wait: float = 30.0,
) -> ServerProcess:
    """Start ``python -m tocsin serve`` and wait until ``/readyz`` answers 200."""
    port = port or free_port(host)
    database = database or f"sqlite+aiosqlite:///{tmp_path / 'tocsin.db'}"
    args = [
        sys.executable, "-m", "tocsin", "serve",
        "--host", host, "--port", str(port),
        "--database", database, "--broker", broker,
        "--api-key", API_KEY, "--jwt-secret", JWT_SECRET,
        *(extra or []),
    ]
    log_path = tmp_path / f"server-{port}.log"
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=full_env)
    url = f"http://{host}:{port}"
    srv = ServerProcess(url=url, port=port, proc=proc, log_path=log_path, args=args)
    try:
        wait_ready(url, proc, srv.log, wait, "tocsin serve")
    except BaseException:
        srv.kill()
        raise
    return srv


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Callable[[], str],
               within: float, name: str) -> None:
    """Wait until ``url``'s ``/readyz`` answers 200; a process that exits fails at once,
    with its log."""
    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{log()}")
        try:
            return httpx.get(url + "/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, within, what=lambda: f"{name} to become ready; its log:\n{log()}")


@contextmanager
def served(backend: str, tmp_path: Path, extra: Sequence[str] = ("--heartbeat", "1s")
           ) -> Iterator[ServerProcess]:
    """A server on a fresh database of ``backend`` (``sqlite`` or ``postgres``), stopped
    and its PostgreSQL schema dropped afterwards."""
    url, schema = database_url(backend, tmp_path)
    srv = start_server(tmp_path, database=url, extra=list(extra))
    try:
        yield srv
    finally:
        srv.stop()
        if schema:
            asyncio.run(drop_pg_schema(schema))
