"""What every channel holds once started: the kernel and attention it was given, and
its outcome counter registered on the node's metrics. A channel class derives from
:class:`Running` and calls :meth:`Running.attach` first thing in its ``start``; the
rest of its ``start`` (its store, its timer kinds) is its own. A channel that sends
over HTTP opens its client with :meth:`Running.open_client`; :meth:`Running.stop` closes it.

Every outcome goes through :meth:`Running.outcome`: the one point where it is counted
and, when anyone listens (the delivery trail, event webhooks), reported to the
kernel's observations as ``<channel>.<step>`` (docs/trail.md, "Kinds")."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import httpx
from prometheus_client import Counter

from tocsin.errors import TocsinError
from tocsin.kernel.observe import Observation
from tocsin.outbound import Rules, client

if TYPE_CHECKING:
    from tocsin.kernel.channel import Attention
    from tocsin.kernel.kernel import Kernel

HTTP_TIMEOUT_S = 10.0
"""One outbound attempt's whole budget (connect, send, first byte): a slow receiver holds
only its own timer, never a publish or a stream."""
HTTP_LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=16)
"""A channel's outbound connections: a bound on sockets however many sends are due."""


class Running:
    name: str = "channel"

    def __init__(self, sent: Counter) -> None:
        self.sent = sent
        """The channel's outcome counter (``tocsin_<name>_sent_total``, by ``result``)."""
        self._kernel: Kernel | None = None
        self._attention: Attention | None = None
        self._client: httpx.AsyncClient | None = None

    def attach(self, kernel: Kernel, attention: Attention) -> None:
        """Keep what ``start`` was given; register the counter on the first start."""
        if self._kernel is None:
            kernel.metrics.registry.register(self.sent)
        self._kernel, self._attention = kernel, attention

    def open_client(self, rules: Rules) -> httpx.AsyncClient:
        """Open the channel's outbound HTTP client (kept as ``_client``): every request
        passes ``rules`` (tocsin.outbound), within :data:`HTTP_TIMEOUT_S` and
        :data:`HTTP_LIMITS`."""
        self._client = client(rules, HTTP_TIMEOUT_S, HTTP_LIMITS)
        # httpx logs every request's URL at INFO, and a push endpoint or a webhook URL
        # is a capability: whoever reads the log could post to it
        logging.getLogger("httpx").setLevel(logging.WARNING)
        return self._client

    async def stop(self) -> None:
        """Close the outbound client, if :meth:`open_client` opened one."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def kernel(self) -> Kernel:
        if self._kernel is None:
            raise TocsinError("not_found", f"The {self.name} channel is not started.")
        return self._kernel

    @property
    def attention(self) -> Attention:
        if self._attention is None:
            raise TocsinError("not_found", f"The {self.name} channel is not started.")
        return self._attention

    # -- outcomes: counted, and reported when anyone listens -----------------------------
    def outcome(self, result: str | None, user: str, nid: str | None, step: str,
                **detail: Any) -> None:
        """Count ``result`` (``None``: not a counted outcome, e.g. a message queued)
        and report ``<name>.<step>`` with ``detail`` for ``user``'s ``nid``."""
        if result is not None:
            self.sent.labels(result).inc()
        kernel = self._kernel
        if kernel is not None and user and kernel.observations.active:
            kernel.observations.report([Observation(f"{self.name}.{step}", kernel.clock(),
                                                    user, nid, None, detail)])

    async def suppressed(self, result: str, user: str, nid: str,
                         wording: dict[str, str] | None = None) -> None:
        """``attention.still_wanted`` said no: count it, and report why (read, gone,
        expired, preferences; ``wording`` renames a reason for this channel). The
        extra read happens only when anyone listens."""
        reason = ""
        if self.kernel.observations.active:
            reason = await self._why_unwanted(user, nid)
            reason = (wording or {}).get(reason, reason)
        self.outcome(result, user, nid, "suppressed", reason=reason)

    async def _why_unwanted(self, user: str, nid: str) -> str:
        try:
            note = await self.kernel.store.get_notification(user, nid)
        except Exception:  # only the trail's wording depends on it
            return "unknown"
        if note is None:
            return "gone"
        if note.get("read"):
            return "read"
        expires = note.get("expiresAt")
        if isinstance(expires, int) and expires <= self.kernel.clock():
            return "expired"
        return "preferences"
