"""``tocsin serve --workers N``: N worker processes on one port, each a full node.

Each worker is an ordinary single-process node (:func:`tocsin.server.run_single`)
with its own hub; workers learn of each other's publishes through the broker, so
``--workers`` above 1 needs a broker that crosses processes (``redis://``).

Sharing the port. On platforms with ``SO_REUSEPORT`` (Linux, the BSDs, macOS)
every worker binds its own listening socket with that option and the kernel
spreads new connections evenly over the workers. That matters for SSE: connections
live for hours, so an uneven first split stays uneven. Elsewhere the supervisor
binds one socket and the workers inherit it (the pre-fork model). A worker starts
listening only once its application is ready, so no connection waits on a worker
that is still migrating or connecting to Redis. Each worker reports to the
supervisor over a pipe once it listens (``server.WorkerRole.ready_fd``); "N workers
serving" is logged only when all N have.

Metrics. The supervisor creates a directory for the run where the workers answer
each other's scrapes, so ``/metrics`` on any worker is the node's total
(``workermetrics.py``); it removes the directory when it exits.

Supervision. Worker 0 starts first and must come up (it applies migrations);
then the others start. A worker that dies is replaced at once (with a growing
pause if it keeps dying right after starting; after ``MAX_QUICK_FAILURES`` such
deaths in a row the supervisor gives up and exits 1). SIGTERM or SIGINT is
forwarded as SIGTERM to every worker, which ends its streams (clients reconnect
and resume by Last-Event-ID) and finishes in-flight publishes; workers still
running after the grace period are killed. Workers run in their own process
group and get SIGTERM if the supervisor itself dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import FrameType

from pydantic import ValidationError

from tocsin import logs
from tocsin.config import Settings, describe_error
from tocsin.logs import ENV_WORKER_ID
from tocsin.workermetrics import ENV_METRICS_DIR

log = logging.getLogger("tocsin.supervisor")

GRACE_S = 25.0
"""How long workers get to finish after SIGTERM (the server's own grace is 15 s)."""
FIRST_WORKER_TIMEOUT_S = 120.0
QUICK_FAILURE_S = 10.0
"""A worker that dies sooner than this after starting counts as a quick failure."""
MAX_QUICK_FAILURES = 5
RESTART_PAUSE_MAX_S = 10.0

ENV_WORKER_FD = "TOCSIN_WORKER_FD"
ENV_READY_FD = "TOCSIN_READY_FD"
"""The write end of the supervisor's readiness pipe (``server.WorkerRole.ready_fd``)."""


class WorkersRefused(SystemExit):
    """Raised (exit status 2) when ``--workers`` cannot work with these settings."""


def check_workers(settings: Settings) -> None:
    """Refuse a worker count the broker cannot serve, with a message saying what to do."""
    if settings.workers < 1:
        _refuse(f"--workers must be at least 1 (got {settings.workers})")
    scheme = settings.broker_url.partition("://")[0].lower()
    if settings.workers > 1 and scheme == "memory":
        _refuse(
            f"--workers {settings.workers} needs a broker that crosses processes, and "
            f"the embedded broker ({settings.broker_url}) reaches only its own process: "
            "events published through one worker would never reach streams held by "
            "another. Use Redis, e.g. --broker redis://127.0.0.1:6379/0 "
            "(TOCSIN_BROKER_URL), or run a single worker."
        )


def _refuse(message: str) -> None:
    print(f"tocsin: error: {message}", file=sys.stderr)
    raise WorkersRefused(2)


def reuseport_available(turned_off: bool = False) -> bool:
    """Whether workers bind the port each (``turned_off``: ``--no-reuseport``)."""
    return hasattr(socket, "SO_REUSEPORT") and not turned_off


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def bind_socket(host: str, port: int, *, reuseport: bool) -> socket.socket:
    """A bound (not yet listening) TCP socket for ``host:port``."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuseport:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if sock.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _probe_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host


def port_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((_probe_host(host), port), timeout=timeout):
            return True
    except OSError:
        return False


def worker_env(settings: Settings, index: int,
               base: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The environment of worker ``index``: ``base`` with every setting as its
    ``TOCSIN_*`` variable (:meth:`Settings.to_env`, so the worker's ``Settings()`` equals
    ``settings``, dev-mode keys included) and the worker's own variables."""
    env = {**base, **settings.to_env(), ENV_WORKER_ID: str(index)}
    for own in (ENV_WORKER_FD, ENV_READY_FD, ENV_METRICS_DIR):
        env.pop(own, None)
    return env


# -- the worker side ------------------------------------------------------------------

def _die_with_parent() -> None:
    """In the child before exec: SIGTERM this process when the supervisor dies (Linux)."""
    os.setpgid(0, 0)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _watch_parent(parent: int) -> None:
    """Portable fallback for :func:`_die_with_parent`: poll for a re-parented process."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)
            return


def worker_main() -> None:
    """Entry point of a worker process: settings from the environment, then serve."""
    from tocsin.server import WorkerRole, run_single

    try:
        settings = Settings()  # exactly the supervisor's: worker_env() passed them all
    except ValidationError as exc:
        raise SystemExit(f"tocsin: error: {describe_error(exc)}") from None
    settings.workers = 1
    parent = os.getppid()
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True,
                     name="tocsin-parent-watch").start()
    fd = os.environ.get(ENV_WORKER_FD)
    if fd:
        sock = socket.socket(fileno=int(fd))
    else:
        sock = bind_socket(settings.host, settings.port, reuseport=True)
    ready = os.environ.get(ENV_READY_FD)
    role = WorkerRole(os.environ.get(ENV_WORKER_ID, "0"), os.environ.get(ENV_METRICS_DIR),
                      int(ready) if ready else None)
    run_single(settings, sock=sock, role=role)


# -- the supervisor side ----------------------------------------------------------------

@dataclass
class _Slot:
    index: int
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restarts: int = 0
    not_before: float = 0.0
    ready: bool = False
    """The worker wrote to the readiness pipe: started and listening."""


@dataclass
class Supervisor:
    settings: Settings
    slots: list[_Slot] = field(default_factory=list)
    stopping: bool = False
    forced: bool = False
    quick_failures: int = 0
    shared: socket.socket | None = None
    reserved: socket.socket | None = None
    metrics_dir: str = ""
    """This run's directory of worker metrics sockets (``workermetrics.py``)."""
    _ready_fds: tuple[int, int] = (-1, -1)
    _wake: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.slots = [_Slot(i) for i in range(self.settings.workers)]

    def _read_ready(self, fd: int) -> None:
        """Thread: mark the workers that report ready (``<index> <pid>`` lines)."""
        with os.fdopen(fd, "rb", buffering=0) as pipe:
            for line in iter(pipe.readline, b""):
                index, _, pid = line.decode().strip().partition(" ")
                for slot in self.slots:
                    if str(slot.index) == index and slot.proc is not None \
                            and str(slot.proc.pid) == pid:
                        slot.ready = True
                        log.info("supervisor: worker %d ready (pid %s)", slot.index, pid)
                self._wake.set()
    # signals
    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGCHLD:
            self._wake.set()
            return
        if self.stopping:
            if signum == signal.SIGINT:
                self.forced = True  # a second Ctrl-C: stop waiting for the workers
        else:
            log.info("supervisor: %s, stopping %d workers",
                     signal.Signals(signum).name, len(self.slots))
            self.stopping = True
        self._wake.set()

    def _spawn(self, slot: _Slot) -> None:
        env = worker_env(self.settings, slot.index)
        env[ENV_METRICS_DIR] = self.metrics_dir
        env[ENV_READY_FD] = str(self._ready_fds[1])
        pass_fds: tuple[int, ...] = (self._ready_fds[1],)
        if self.shared is not None:
            env[ENV_WORKER_FD] = str(self.shared.fileno())
            pass_fds = (*pass_fds, self.shared.fileno())
        slot.ready = False
        slot.proc = subprocess.Popen(
            [sys.executable, "-c", "from tocsin.supervisor import worker_main; worker_main()"],
            env=env, pass_fds=pass_fds, preexec_fn=_die_with_parent,
        )
        slot.started = time.monotonic()
        log.info("supervisor: worker %d started (pid %d)", slot.index, slot.proc.pid)

    def _signal_all(self, sig: int) -> None:
        for slot in self.slots:
            if slot.proc is not None and slot.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    slot.proc.send_signal(sig)

    def _alive(self) -> list[_Slot]:
        return [s for s in self.slots if s.proc is not None and s.proc.poll() is None]

    def run(self) -> int:
        s = self.settings
        if port_answers(s.host, s.port):
            print(f"tocsin: error: something already answers on {s.host}:{s.port}",
                  file=sys.stderr)
            return 1
        try:
            if reuseport_available(s.no_reuseport):
                # Bound but never listening: it takes no connections, but holds the
                # port between worker restarts and tells us now if it is taken.
                self.reserved = bind_socket(s.host, s.port, reuseport=True)
                if s.port == 0:
                    s.port = int(self.reserved.getsockname()[1])
            else:
                self.shared = bind_socket(s.host, s.port, reuseport=False)
                self.shared.listen(4096)
                if s.port == 0:
                    s.port = int(self.shared.getsockname()[1])
        except OSError as exc:
            print(f"tocsin: error: cannot listen on {s.host}:{s.port}: {exc}", file=sys.stderr)
            return 1

        handlers = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD)}
        self.metrics_dir = tempfile.mkdtemp(prefix="tocsin-metrics-")
        self._ready_fds = os.pipe()
        threading.Thread(target=self._read_ready, args=(self._ready_fds[0],), daemon=True,
                         name="tocsin-ready").start()
        try:
            first = self.slots[0]
            self._spawn(first)
            if not self._wait_first(first):
                self._stop_all()
                code = first.proc.returncode if first.proc is not None else None
                if self.stopping:
                    return 0
                print(f"tocsin: error: worker 0 did not start (exit status {code}); "
                      "see its log above", file=sys.stderr)
                return 1
            for slot in self.slots[1:]:
                self._spawn(slot)
            if self._wait_ready():
                log.info("supervisor: %d workers serving on %s:%d (%s)", len(self.slots),
                         s.host, s.port, "shared socket" if self.shared else "SO_REUSEPORT")
            code = self._supervise()
            self._stop_all()
            return code
        finally:
            for sig, old in handlers.items():
                signal.signal(sig, old)
            for sock in (self.shared, self.reserved):
                if sock is not None:
                    sock.close()
            shutil.rmtree(self.metrics_dir, ignore_errors=True)
            # the write end only: the reader thread (a daemon) may still be blocked
            # reading, and closing the fd it reads would race its next read
            os.close(self._ready_fds[1])

    def _wait_ready(self) -> bool:
        """Until every worker reports ready (``True``), one dies or the node stops."""
        deadline = time.monotonic() + FIRST_WORKER_TIMEOUT_S
        while time.monotonic() < deadline and not self.stopping:
            if all(slot.ready for slot in self.slots):
                return True
            if any(slot.proc is None or slot.proc.poll() is not None for slot in self.slots):
                log.warning("supervisor: a worker died while starting; see below")
                return False
            self._wake.wait(0.1)
            self._wake.clear()
        return False

    def _wait_first(self, slot: _Slot) -> bool:
        deadline = time.monotonic() + FIRST_WORKER_TIMEOUT_S
        while time.monotonic() < deadline and not self.stopping:
            assert slot.proc is not None
            if slot.proc.poll() is not None:
                return False
            if slot.ready:
                return True
            self._wake.wait(0.1)
            self._wake.clear()
        return False

    def _supervise(self) -> int:
        while not self.stopping:
            now = time.monotonic()
            for slot in self.slots:
                proc = slot.proc
                if proc is None:
                    if now >= slot.not_before:
                        self._spawn(slot)
                    continue
                code = proc.poll()
                if code is None:
                    if now - slot.started > QUICK_FAILURE_S and slot.restarts:
                        self.quick_failures = 0
                    continue
                lived = now - slot.started
                quick = lived < QUICK_FAILURE_S
                self.quick_failures = self.quick_failures + 1 if quick else 0
                log.warning("supervisor: worker %d (pid %d) exited with %s after %.1fs; "
                            "replacing it", slot.index, proc.pid, _describe(code), lived)
                if self.quick_failures >= MAX_QUICK_FAILURES:
                    print(f"tocsin: error: workers died {self.quick_failures} times in a "
                          "row right after starting; giving up (see the log above)",
                          file=sys.stderr)
                    return 1
                slot.proc = None
                slot.restarts += 1
                pause = min(RESTART_PAUSE_MAX_S, 0.5 * 2 ** (self.quick_failures - 1)) \
                    if quick else 0.0
                slot.not_before = now + pause
                if pause == 0.0:
                    self._spawn(slot)
            self._wake.wait(0.5)
            self._wake.clear()
        return 0

    def _stop_all(self) -> None:
        began = time.monotonic()
        running = len(self._alive())
        self._signal_all(signal.SIGTERM)
        deadline = began + GRACE_S
        while self._alive() and time.monotonic() < deadline and not self.forced:
            self._wake.wait(0.1)
            self._wake.clear()
        if self._alive():
            log.warning("supervisor: killing %d workers that did not stop in time",
                        len(self._alive()))
            self._signal_all(signal.SIGKILL)
        for slot in self.slots:
            if slot.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    slot.proc.wait(5)
        if running:
            log.info("supervisor: %d workers stopped in %.1fs (each logged its streams "
                     "closed above)", running, time.monotonic() - began)


def _describe(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return signal.Signals(-code).name
    return f"status {code}"


def run_workers(settings: Settings) -> None:
    """Serve with ``settings.workers`` processes; returns when they have all stopped.

    Raises :class:`SystemExit` with a non-zero status if the workers cannot be
    started or keep dying, and (status 2) if the broker cannot cross processes."""
    check_workers(settings)
    if settings.workers == 1:
        from tocsin.server import run_single

        run_single(settings)
        return
    logs.configure(settings.log_level, "supervisor")
    code = Supervisor(settings).run()
    if code:
        raise SystemExit(code)
