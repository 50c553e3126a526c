"""The publish operation the hot routes share: ``POST /api/notifications`` and each
item of ``POST /api/notifications/bulk`` (``bulk.py``) make the same notification
from the same model and answer with the same reply."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tocsin.api.models import PublishIn
from tocsin.errors import TocsinError
from tocsin.service import Tocsin
from tocsin.store.base import NewNotification, PublishResult

Charge = Callable[[int], Awaitable[None]]
"""Spends a publisher's rate budget: the notifications a request makes beyond the one
token the gate admitted it for (``Limits.charge``)."""


def note_of(body: PublishIn) -> NewNotification:
    """The notification a validated publish body describes."""
    return NewNotification(
        type=body.type, title=body.title, body=body.body, priority=body.priority,
        group_key=body.group_key, url=body.url, actor=body.actor, source=body.source,
        data=body.data, ttl_ms=body.ttl * 1000 if body.ttl else None,
    )


def publish_reply(result: PublishResult) -> dict[str, object]:
    """A stored publish's reply: ``ids``, and attention's ``skipped``/``silent``."""
    if result.skipped is None and result.silent is None:
        return {"ids": result.ids}
    reply: dict[str, object] = {"ids": result.ids}  # attention (docs/attention.md)
    if result.skipped:
        reply["skipped"] = result.skipped
    if result.silent:
        reply["silent"] = result.silent
    return reply


async def publish_body(tocsin: Tocsin, publisher: str, body: PublishIn,
                       charge: Charge | None = None) -> dict[str, object]:
    """The publish operation: one notification per recipient, stored, then fanned
    out; with ``charge`` (``--rate-publish`` on), what it made (one per notification)
    charged to the publisher's budget once stored."""
    note = note_of(body)
    if body.escalation is not None:  # the only extra cost of a plain publish: this test
        if body.idempotency_key is not None:
            raise TocsinError("invalid_field", "idempotencyKey cannot be combined with "
                              "escalation.", "idempotencyKey")
        return await tocsin.escalation.open(publisher, body.escalation,
                                            body.recipients or [], note, charge)
    if body.recipients is None:
        raise TocsinError("missing_field", "'recipients' is required.", "recipients")
    result = await tocsin.publish(publisher, body.recipients, note, body.idempotency_key)
    if charge is not None and not result.replayed:
        # After the write: a retry with the same idempotencyKey (its reason to exist)
        # makes nothing and costs only the token it was admitted for.
        await charge(len(set(body.recipients)) - 1)
    return publish_reply(result)
