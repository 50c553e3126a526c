"""The node's kernel: the store, the hub, the durable timers, the clock and the
metrics, and the operations every feature and channel builds on (publish, read
state, fan-out, timers). It imports no feature; features and channels are given
it (or a narrow protocol of it) when they are built, by the assembly point
(``tocsin/service.py``)."""

from tocsin.kernel.clock import file_clock
from tocsin.kernel.kernel import Kernel, Timers

__all__ = ["Kernel", "Timers", "file_clock"]
