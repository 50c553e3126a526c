"""The node's log format: every line says when and which process wrote it.

A leaf. ``tocsin serve --workers N`` runs N worker processes and a supervisor that
write to the same stderr, so each line carries its writer: ``supervisor``,
``worker <i>`` (the index the supervisor gave it, stable across its restarts) or
``node`` (a single process), and the pid. uvicorn's own loggers are not given
uvicorn's default handlers (no timestamp, no writer): ``UVICORN_LOG_CONFIG`` leaves
them propagating to the root handler configured here.
"""

from __future__ import annotations

import copy
import logging
import os
from typing import Any

ENV_WORKER_ID = "TOCSIN_WORKER_ID"
"""Set by the supervisor in each worker's environment (``supervisor.worker_env``)."""

UVICORN_LOG_CONFIG: dict[str, Any] = {
    # uvicorn applies this instead of its own LOGGING_CONFIG: its loggers keep no
    # handler of their own and reach the root handler (and its format) like ours.
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {name: {"handlers": [], "propagate": True}
                for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
}


def writer() -> str:
    """Who this process is in the log: ``worker <i>`` under the supervisor, else ``node``."""
    index = os.environ.get(ENV_WORKER_ID)
    return f"worker {index}" if index is not None else "node"


def line_format(who: str) -> str:
    return f"%(asctime)s %(levelname)s [{who} pid %(process)d] %(name)s: %(message)s"


class EveryLineFormatter(logging.Formatter):
    """A message of several lines (a traceback, a migration's docstring) keeps the
    time and the writer on each: continuation lines repeat the head, then ``| ``."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if "\n" not in text:
            return text
        bare = copy.copy(record)
        bare.msg, bare.args, bare.exc_info, bare.exc_text, bare.stack_info = \
            "", None, None, None, None
        head = super().format(bare)
        first, *rest = text.split("\n")
        return "\n".join([first, *(f"{head}| {line}" for line in rest)])


def configure(level: str, who: str | None = None) -> None:
    """One handler on the root logger, on stderr, with :func:`line_format` (replacing
    any handler installed before, so a worker never writes a line without it)."""
    handler = logging.StreamHandler()
    handler.setFormatter(EveryLineFormatter(line_format(who or writer())))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
