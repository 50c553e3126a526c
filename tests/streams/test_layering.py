"""Issue 23, item 5: the live-delivery modules sit below the web framework.

``streams/ws.py`` used to import ``api/topics.py`` (a FastAPI router) for
``check_topic``, and ``streams/endpoint.py`` and ``streams/poll.py`` took their ASGI
helpers from ``api/asgi.py``: importing a transport loaded FastAPI and the routers.
A fresh interpreter is the only honest check (this test process has imported
everything already).
"""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import pkgutil, importlib, sys
import tocsin.streams
names = sorted(m.name for m in pkgutil.iter_modules(tocsin.streams.__path__, "tocsin.streams."))
for name in names:
    importlib.import_module(name)
print(",".join(names))
leaked = (m for m in sys.modules if m == "fastapi" or m.startswith(("fastapi.", "tocsin.api")))
print(",".join(sorted(leaked)))
"""


def test_streams_load_no_web_framework() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         timeout=120, check=True).stdout.splitlines()
    imported, leaked = out[0].split(","), out[1]
    assert "tocsin.streams.ws" in imported and "tocsin.streams.hub" in imported
    assert leaked == "", f"importing tocsin.streams.* loaded {leaked}"
