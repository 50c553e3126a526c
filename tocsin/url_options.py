"""The query options of a service URL (``--database``, ``--broker``), checked at start.

Each option must be one Tocsin reads itself (with a check of its value) or one the
driver takes. A driver ignores or chokes on any other, and only later: SQLite drops it
(a typo such as ``?synchronus=normal`` silently keeps the default), asyncpg and redis-py
raise a ``TypeError`` at the first connection, deep in a pool. One check serves the
SQLite, PostgreSQL and Redis URLs, so each says what it takes the same way.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection, Mapping
from typing import Any

__all__ = ["ValueCheck", "check_options", "parameters"]

ValueCheck = Callable[[str, str], None]
"""Given an option's name and value: raise ``ValueError`` saying what is wrong with it."""


def check_options(options: Mapping[str, Any], own: Mapping[str, ValueCheck | None],
                  driver: Collection[str], takes: str) -> None:
    """Raise ``ValueError`` for the first of ``options`` that is neither one of Tocsin's
    ``own`` (whose check, if any, must pass its value) nor one of the ``driver``'s;
    ``takes`` says what the URL takes, after the option's name."""
    for name, value in options.items():
        if name in own:
            check = own[name]
            if check is not None:
                check(name, str(value))
        elif name not in driver:
            raise ValueError(f"unknown option {name!r} ({takes})")


def parameters(*functions: Callable[..., Any]) -> frozenset[str]:
    """The parameter names of ``functions``: the options a driver reads off a URL (its
    connect function's, its connection classes' ``__init__``)."""
    return frozenset(name for f in functions for name in inspect.signature(f).parameters)
