"""The systems under test: how to start each, where its routes are, how to sample its CPU."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import psutil

API_KEY = "bench-publisher-key"
JWT_SECRET = "bench-jwt-secret-0123456789abcdef0123456789abcdef"
PG_URL = os.environ.get("BENCH_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/0")
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class System:
    """A server process (or process tree) under test."""

    name: str
    label: str
    kind: str = "sse"  # client protocol: "sse" | "ws" | "sio"
    ids: str = "seq"  # event ids: "seq" (<epoch>-<seq> or integers) | "nchan" (<time>:<index>)
    workers: int = 1
    needs: tuple[str, ...] = ()
    durable: bool = False
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    tmp: Path | None = None
    log_path: Path | None = None
    cpus: list[int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # start a fresh server for each scenario instead of waiting for it to go idle
    restart_between: ClassVar[bool] = False

    # --- lifecycle -----------------------------------------------------------
    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}

    def available(self) -> str | None:
        """None when runnable here, else the reason it is skipped."""
        if "postgres" in self.needs and not port_open("127.0.0.1", 5432):
            return "PostgreSQL not reachable on 127.0.0.1:5432"
        if "redis" in self.needs and not port_open("127.0.0.1", 6379):
            return "Redis not reachable on 127.0.0.1:6379"
        return None

    def start(self, timeout: float = 60.0) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix=f"bench-{self.name}-"))
        self.port = free_port()
        self.prepare()
        self.log_path = self.tmp / "server.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         env=self.env(), cwd=self.cwd(),
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.proc.returncode}: {self.log()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz",
                                            timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError(f"{self.name} not ready in {timeout}s: {self.log()}")
        if self.cpus:
            for p in self.processes():
                with contextlib.suppress(psutil.Error):
                    p.cpu_affinity(self.cpus)

    def prepare(self) -> None:
        pass

    def cwd(self) -> str:
        return str(ROOT)

    def log(self) -> str:
        if self.log_path and self.log_path.exists():
            return self.log_path.read_text(errors="replace")[-3000:]
        return ""

    def processes(self) -> list[psutil.Process]:
        if self.proc is None:
            return []
        try:
            p = psutil.Process(self.proc.pid)
            return [p, *p.children(recursive=True)]
        except psutil.Error:
            return []

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.cleanup()
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def cleanup(self) -> None:
        pass

    # --- sampling ----------------------------------------------------------------
    def cpu_seconds(self) -> float:
        tot = 0.0
        for p in self.processes():
            with contextlib.suppress(psutil.Error):
                c = p.cpu_times()
                tot += c.user + c.system
        return tot

    def rss(self) -> int:
        tot = 0
        for p in self.processes():
            with contextlib.suppress(psutil.Error):
                tot += p.memory_info().rss
        return tot

    def fds(self) -> int:
        tot = 0
        for p in self.processes():
            with contextlib.suppress(psutil.Error):
                tot += p.num_fds()
        return tot

    def connections(self) -> int | None:
        """Open streams as the server counts them (``GET /api/stats``), None if unknown."""
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/api/stats",
                                     headers=self.publish_headers())
        try:
            with urllib.request.urlopen(req, timeout=2) as r:
                return int(json.loads(r.read()).get("connections"))
        except (OSError, ValueError, TypeError):
            return None

    def wait_idle(self, timeout: float = 120.0) -> float:
        """Wait until the server has let go of every stream; returns the seconds waited.
        A server too busy to answer (python-socketio tearing down 10k sockets takes
        tens of seconds) is not idle: the next scenario would race its teardown."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            n = self.connections()
            if n is not None and n <= 0:
                break
            if n is None and self.answers():
                break  # it answers but does not count streams
            time.sleep(0.25)
        return time.monotonic() - t0

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    # --- routes --------------------------------------------------------------------
    def topic_stream_path(self, topic: str, user: str) -> str:
        return f"/api/topics/{quote(topic, safe='')}/stream"

    def user_stream_path(self, user: str) -> str:
        return f"/api/notifications/stream?user={quote(user, safe='')}"

    def topic_publish_path(self, topic: str) -> str:
        return f"/api/topics/{quote(topic, safe='')}/events"

    def user_publish_path(self) -> str:
        """Where unicast notifications go: one request names its ``recipients``; a path
        with ``{user}`` instead gets one publish per recipient (see the publisher)."""
        return "/api/notifications"

    def bulk_publish_path(self) -> str | None:
        """Where many distinct notifications go in one request; ``None``: no bulk API
        (the bulk scenario then publishes them one at a time)."""
        return None

    def publish_headers(self) -> dict[str, str]:
        return {}


class Floor(System):
    def command(self) -> list[str]:
        return [sys.executable, "-m", "bench.peers.floor", "--port", str(self.port),
                "--procs", str(self.workers)]


class Typical(System):
    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "bench.peers.typical", "--port", str(self.port)]
        if "redis" in self.needs:
            cmd += ["--redis", REDIS_URL]
        return cmd


class SocketIO(System):
    # python-socketio's per-disconnect cleanup scans every room of the namespace (one per
    # socket at least): 10k sockets closing cost it ~1 min of CPU. A fresh server per
    # scenario spares the run that wait; nothing it holds is durable, so it is killed.
    restart_between: ClassVar[bool] = True

    def command(self) -> list[str]:
        return [sys.executable, "-m", "bench.peers.sio", "--port", str(self.port)]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        super().stop()

    def topic_stream_path(self, topic: str, user: str) -> str:
        return f"/socket.io/?topic={quote(topic, safe='')}"

    def user_stream_path(self, user: str) -> str:
        return f"/socket.io/?user={quote(user, safe='')}"


class Tocsin(System):
    def __init__(self, *a: Any, database: str = "sqlite", broker: str = "memory://",
                 **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.database = database
        self.broker = broker
        self.schema = f"bench_{os.getpid()}_{int(time.time())}"
        self._tokens: dict[str, str] = {}

    def db_url(self) -> str:
        if self.database == "postgres":
            return f"{PG_URL}?schema={self.schema}"
        assert self.tmp is not None
        url = f"sqlite+aiosqlite:///{self.tmp / 'tocsin.db'}"
        if self.database == "sqlite-normal":
            url += "?synchronous=normal"
        return url

    def broker_url(self) -> str:
        """The broker, on a Pub/Sub channel of this run's own: every Tocsin on a Redis
        shares the default channel ``tocsin``, so another run or test on the same Redis
        would otherwise feed this one its event batches and presence (measured: a
        concurrent 100k run's presence snapshots were most of a --workers 2 profile)."""
        if not self.broker.startswith(("redis://", "rediss://")) or "channel=" in self.broker:
            return self.broker
        return f"{self.broker}{'&' if '?' in self.broker else '?'}channel={self.schema}"

    def cleanup(self) -> None:
        if self.database == "postgres":
            self._pg("DROP SCHEMA IF EXISTS {s} CASCADE")

    def _pg(self, sql: str) -> None:
        cmd = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-q", "-c",
               sql.format(s=self.schema)]
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(cmd, check=False, capture_output=True, timeout=20)

    def cwd(self) -> str:
        # ``python -m`` puts the working directory first on sys.path
        return os.environ.get("BENCH_TOCSIN_ROOT") or str(ROOT)

    def env(self) -> dict[str, str]:
        e = super().env()
        alt = os.environ.get("BENCH_TOCSIN_ROOT")
        if alt:  # A/B a patched tree: its tocsin package comes first on the path
            e["PYTHONPATH"] = f"{alt}{os.pathsep}{ROOT}"
        return e

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "tocsin", "serve", "--host", "127.0.0.1",
               "--port", str(self.port), "--database", self.db_url(),
               "--broker", self.broker_url(), "--api-key", API_KEY, "--jwt-secret", JWT_SECRET,
               "--heartbeat", "15s"]
        if self.workers > 1:
            cmd += ["--workers", str(self.workers)]
        return cmd

    def token(self, user: str, topics: list[str] | None = None) -> str:
        import jwt

        key = user + ("|t" if topics else "")
        tok = self._tokens.get(key)
        if tok is None:
            claims: dict[str, Any] = {"sub": user, "exp": int(time.time()) + 6 * 3600}
            if topics:
                claims["topics"] = topics
            tok = jwt.encode(claims, JWT_SECRET, algorithm="HS256")
            self._tokens[key] = tok
        return tok

    def topic_stream_path(self, topic: str, user: str) -> str:
        return (f"/api/topics/{quote(topic, safe='')}/stream?token="
                f"{self.token(user, ['bench:*'])}")

    def user_stream_path(self, user: str) -> str:
        return f"/api/notifications/stream?token={self.token(user)}"

    def publish_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {API_KEY}"}

    def bulk_publish_path(self) -> str | None:
        return "/api/notifications/bulk"


class TocsinWS(Tocsin):
    """The same server; each client is one ``/api/ws`` socket subscribed to one stream
    (its inbox or the topic), the token in the upgrade's query (see ``WSClient``)."""

    def topic_stream_path(self, topic: str, user: str) -> str:
        return f"/api/ws?token={self.token(user, ['bench:*'])}#topic:{topic}"

    def user_stream_path(self, user: str) -> str:
        return f"/api/ws?token={self.token(user)}#inbox"


NCHAN_PACKAGES = "nginx-light libnginx-mod-nchan"
# Nchan's per-channel message buffer (memory store). A channel keeps at most this many
# messages, each for at most NCHAN_MESSAGE_TIMEOUT: enough for a reconnecting client to
# get, by ``Last-Event-ID``, everything published to it meanwhile. The reconnect storm
# is the tightest case: sizing in bench/README.md (systems table).
NCHAN_BUFFER_LENGTH = 64
NCHAN_MESSAGE_TIMEOUT = "10m"


def nginx_binary() -> str | None:
    """nginx on the PATH, else Debian's /usr/sbin/nginx (not on a user's PATH)."""
    found = shutil.which("nginx")
    if found is None and os.access("/usr/sbin/nginx", os.X_OK):
        found = "/usr/sbin/nginx"
    return found


def nchan_module() -> Path | None:
    """The Nchan module's ``.so`` (Debian's ``libnginx-mod-nchan``), None if missing."""
    env = os.environ.get("BENCH_NCHAN_MODULE")
    candidates = [Path(env)] if env else []
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["dpkg", "-L", "libnginx-mod-nchan"], capture_output=True,
                             text=True, timeout=10, check=False).stdout
        candidates += [Path(x) for x in out.split() if x.endswith("ngx_nchan_module.so")]
    candidates.append(Path("/usr/lib/nginx/modules/ngx_nchan_module.so"))
    return next((c for c in candidates if c.is_file()), None)


class Nchan(System):
    """nginx with the Nchan module (C): its own master + one worker from a config
    generated in the run's temp dir. Channels: ``/pub/<channel>`` (POST the JSON) and
    ``/sub/<channel>`` (EventSource), one channel per topic and one per user; messages
    live in Nchan's memory store only. Ids are ``<time>:<index>`` (``ids="nchan"``)."""

    def available(self) -> str | None:
        if nginx_binary() is None:
            return f"nginx is not installed (apt-get install {NCHAN_PACKAGES})"
        if nchan_module() is None:
            return f"the Nchan module is not installed (apt-get install {NCHAN_PACKAGES})"
        return super().available()

    def prepare(self) -> None:
        assert self.tmp is not None
        module = nchan_module()
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nofile = 20_000 if hard == resource.RLIM_INFINITY else min(int(hard), 1 << 20)
        # nginx closes connections still waiting for their request once fewer than 1/16
        # of worker_connections are free ("not enough, reusing connections"): size it
        # so that point lies beyond the open-file cap, which is then the real limit
        conns = -(-nofile * 16 // 15) + 16
        tmp = self.tmp
        # as root the worker would become "nobody", who cannot enter the 0700 temp dir
        user = "user root root;\n" if os.geteuid() == 0 else ""
        conf = f"""load_module {module};
{user}worker_processes 1;
worker_rlimit_nofile {nofile};
pid {tmp}/nginx.pid;
error_log stderr warn;
events {{
    worker_connections {conns};
    multi_accept on;
}}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 1000000;
    nchan_shared_memory_size 256m;
    nchan_message_buffer_length {NCHAN_BUFFER_LENGTH};
    nchan_message_timeout {NCHAN_MESSAGE_TIMEOUT};
    server {{
        listen 127.0.0.1:{self.port} backlog=4096;
        location = /readyz {{ return 200 "ok\n"; }}
        location = /api/stats {{ nchan_stub_status; }}
        location ~ ^/pub/(.+)$ {{
            nchan_publisher http;
            nchan_channel_id $1;
        }}
        location ~ ^/sub/(.+)$ {{
            nchan_subscriber eventsource;
            nchan_channel_id $1;
            # a new subscriber gets what its channel holds (nothing, on a fresh channel);
            # one resuming with Last-Event-ID gets what came after that id
            nchan_subscriber_first_message oldest;
            nchan_subscriber_timeout 0;
            nchan_eventsource_ping_interval 15s;
        }}
    }}
}}
"""
        (tmp / "nginx.conf").write_text(conf)

    def command(self) -> list[str]:
        assert self.tmp is not None
        return [nginx_binary() or "nginx", "-e", "stderr", "-p", str(self.tmp),
                "-c", str(self.tmp / "nginx.conf"), "-g", "daemon off;"]

    def connections(self) -> int | None:
        """Subscribers as ``nchan_stub_status`` counts them."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/stats",
                                        timeout=2) as r:
                for line in r.read().decode().splitlines():
                    if line.startswith("subscribers:"):
                        return int(line.split(":", 1)[1])
        except (OSError, ValueError):
            return None
        return None

    def topic_stream_path(self, topic: str, user: str) -> str:
        return f"/sub/{quote(topic, safe='')}"

    def user_stream_path(self, user: str) -> str:
        return f"/sub/user.{quote(user, safe='')}"

    def topic_publish_path(self, topic: str) -> str:
        return f"/pub/{quote(topic, safe='')}"

    def user_publish_path(self) -> str:
        return "/pub/user.{user}"


def make_systems(names: list[str]) -> list[System]:
    table: dict[str, System] = {
        "tocsin": Tocsin("tocsin", "Tocsin (SQLite, memory broker)", durable=True),
        "tocsin-pg": Tocsin("tocsin-pg", "Tocsin (PostgreSQL, Redis broker)", durable=True,
                            database="postgres", broker=REDIS_URL,
                            needs=("postgres", "redis")),
        # the multi-core row: two workers (SO_REUSEPORT) on both cores, which the
        # load shares, so this row is "on the machine", not per core
        "tocsin-pg2": Tocsin("tocsin-pg2", "Tocsin (PostgreSQL, Redis broker, --workers 2)",
                             durable=True, database="postgres", broker=REDIS_URL, workers=2,
                             needs=("postgres", "redis")),
        "tocsin-ws": TocsinWS("tocsin-ws", "Tocsin over WebSocket (SQLite, memory broker)",
                              kind="ws", durable=True),
        "tocsin-normal": Tocsin("tocsin-normal", "Tocsin (SQLite synchronous=normal)",
                                durable=True, database="sqlite-normal"),
        "floor": Floor("floor", "Floor (raw uvloop sockets)"),
        "socketio": SocketIO("socketio", "python-socketio (ASGI, uvicorn)", kind="sio"),
        "typical": Typical("typical", "Typical (FastAPI + sse-starlette + Queue)"),
        "typical-redis": Typical("typical-redis", "Typical + broadcaster/Redis",
                                 needs=("redis",)),
        "nchan": Nchan("nchan", "Nchan (C, nginx)", ids="nchan"),
    }
    out = []
    for n in names:
        if n not in table:
            raise SystemExit(f"unknown system {n!r}; choose from {', '.join(table)}")
        out.append(table[n])
    return out
