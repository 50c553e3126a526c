"""What every channel holds once started: the kernel and attention it was given, and
its outcome counter registered on the node's metrics. A channel class derives from
:class:`Running` and calls :meth:`Running.attach` first thing in its ``start``; the
rest of its ``start`` (its store, its timer kinds) is its own."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Counter

from tocsin.errors import TocsinError

if TYPE_CHECKING:
    from tocsin.kernel.channel import Attention
    from tocsin.kernel.kernel import Kernel


class Running:
    name: str = "channel"

    def __init__(self, sent: Counter) -> None:
        self.sent = sent
        """The channel's outcome counter (``tocsin_<name>_sent_total``, by ``result``)."""
        self._kernel: Kernel | None = None
        self._attention: Attention | None = None

    def attach(self, kernel: Kernel, attention: Attention) -> None:
        """Keep what ``start`` was given; register the counter on the first start."""
        if self._kernel is None:
            kernel.metrics.registry.register(self.sent)
        self._kernel, self._attention = kernel, attention

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
