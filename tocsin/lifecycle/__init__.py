"""What happens to a notification after its publish: the subscriber's snooze (and its
wake, a durable ``snooze`` timer) and the publisher's update and retract by
idempotency key. Stored (``store/lifecycle.py``), then fanned out through the kernel.
Live grouping is not here: it happens inside the publish (``store/grouping.py``).
See ``docs/grouping.md``."""

from tocsin.lifecycle.service import Lifecycle

__all__ = ["Lifecycle"]
