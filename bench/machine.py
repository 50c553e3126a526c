"""Machine facts and kernel memory probes."""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import subprocess
import sys
from importlib import metadata
from typing import Any

import psutil

PACKAGES = ("tocsin", "uvicorn", "uvloop", "httptools", "starlette", "fastapi", "sse-starlette",
            "python-socketio", "python-engineio", "broadcaster", "redis", "sqlalchemy",
            "aiosqlite", "asyncpg", "orjson")


def kernel_mem() -> int:
    """Bytes of kernel memory that move with socket count: slab + TCP buffer pages."""
    slab = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Slab:"):
                slab = int(line.split()[1]) * 1024
    tcp = 0
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                parts = line.split()
                tcp = int(parts[parts.index("mem") + 1]) * os.sysconf("SC_PAGE_SIZE")
    return slab + tcp


def facts() -> dict[str, Any]:
    vers = {}
    for p in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            vers[p] = metadata.version(p)
    cpu_model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    git = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5).stdout.strip()
    return {
        "cores": os.cpu_count(),
        "cpu": cpu_model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
        "loadavg_at_start": os.getloadavg(),
        "packages": vers,
        "git": git,
    }
