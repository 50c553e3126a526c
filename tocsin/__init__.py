"""Tocsin: a self-hostable, real-time notification service.

The public surface is what ``__all__`` names; everything else is internal. Names
are imported on first use, so ``import tocsin`` stays cheap for the CLI.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tocsin._version import __version__

if TYPE_CHECKING:
    from tocsin.app import create_app
    from tocsin.client import Publisher, subscribe
    from tocsin.config import Settings
    from tocsin.service import Tocsin

__all__ = ["Publisher", "Settings", "Tocsin", "__version__", "create_app", "subscribe"]

_LAZY = {
    "create_app": "tocsin.app",
    "Publisher": "tocsin.client",
    "subscribe": "tocsin.client",
    "Settings": "tocsin.config",
    "Tocsin": "tocsin.service",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tocsin' has no attribute {name!r}")
