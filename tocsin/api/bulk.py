"""``POST /api/notifications/bulk``: up to :data:`BULK_MAX_ITEMS` distinct
notifications in one request, each with its own recipients, content and idempotency
key, answered per item in order (docs/python.md, "Bulk publishing").

Each item is validated with the publish route's own model (``PublishIn``), so an
item's error is the one a single publish of it gets. The items without an
idempotency key or ``groupKey`` are stored in shared group-commit transactions (one
when they fit: ``Store.publish_many``); keyed and grouped items run as a single
publish does, concurrently; an ``escalation`` item opens its incident as a single
publish would. The request answers 200 once every item is settled: an item's
``status`` is 201 (stored, or an idempotent replay) with the single publish's reply,
or the status of its error with ``error`` in the usual shape.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from pydantic import BaseModel, Field, ValidationError
from starlette.types import Receive, Scope, Send

from tocsin.api.models import MAX_RECIPIENTS, PublishIn, RequestBody
from tocsin.api.publishing import note_of, publish_body, publish_reply
from tocsin.asgi import Headers, read_body, send_error, send_json
from tocsin.auth import Publisher
from tocsin.errors import TocsinError
from tocsin.ratelimit.limits import Limits
from tocsin.service import Tocsin
from tocsin.store.base import PublishItem, PublishResult
from tocsin.validation import error_from_validation

log = logging.getLogger("tocsin")

BULK_PATH = "/api/notifications/bulk"
BULK_MAX_ITEMS = 1000
BULK_MAX_BODY_BYTES = 16 * 1024 * 1024
"""This route's body limit (the others': ``asgi.MAX_BODY_BYTES``, 8 MiB): 1,000 items
of a few KB each (a 4 KB body and 8 KB of data) fit; checked by the gate on the
declared length and again while the body streams in."""
BULK_MAX_RECIPIENTS = 10 * MAX_RECIPIENTS
"""Recipients of all items together: the notifications one request may make."""


class _Envelope(RequestBody):
    """What the route validates first: the list, its items still unread."""

    notifications: list[Any] = Field(min_length=1, max_length=BULK_MAX_ITEMS)


class BulkPublishIn(RequestBody):
    """The body as documented (OpenAPI): each item is a publish body."""

    notifications: list[PublishIn] = Field(
        min_length=1, max_length=BULK_MAX_ITEMS,
        description="1 to 1,000 notifications, each what POST /api/notifications takes")


class BulkItemOut(BaseModel):
    status: int = Field(description="201: stored (or an idempotent replay); otherwise "
                        "the status of 'error', the reply a single publish would get")
    ids: dict[str, str] | None = Field(default=None, description="recipient -> id")
    skipped: dict[str, str] | None = None
    silent: dict[str, str] | None = None
    incident: str | None = None
    error: dict[str, Any] | None = Field(default=None,
                                         description="{code, message, field?}")


class BulkPublishOut(BaseModel):
    results: list[BulkItemOut] = Field(description="one per item, in order")


def _one_by_one(raw: bytes) -> list[PublishIn | ValidationError]:
    """Each item validated on its own (the envelope first: its errors are the
    request's): the item's model, or the error a single publish of it gets."""
    try:
        items = _Envelope.model_validate_json(raw).notifications
    except ValidationError as exc:
        raise error_from_validation(exc.errors(), located=False) from None
    out: list[PublishIn | ValidationError] = []
    for item in items:
        try:
            out.append(PublishIn.model_validate(item))
        except ValidationError as exc:
            out.append(exc)
    return out


def _failed(err: TocsinError) -> dict[str, object]:
    return {"status": err.status, **err.body()}


def _outcome(result: PublishResult | Exception) -> dict[str, object]:
    if isinstance(result, PublishResult):
        return {"status": 201, **publish_reply(result)}
    if isinstance(result, TocsinError):
        return _failed(result)
    log.error("unhandled error in a bulk publish item", exc_info=result)
    return _failed(TocsinError("internal"))


class BulkPublish:
    __slots__ = ("cors", "limits", "publisher", "tocsin")

    def __init__(self, tocsin: Tocsin, publisher: Publisher, cors: Headers,
                 limits: Limits) -> None:
        self.tocsin, self.publisher, self.cors = tocsin, publisher, cors
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            raw = await read_body(receive, BULK_MAX_BODY_BYTES)
            try:
                # The whole list in one call, straight from the bytes (as a single
                # publish validates its body): no Python object per item is made
                # twice. Only when something is wrong anywhere is the body read again
                # item by item, so each bad item gets exactly its own error.
                valid: list[PublishIn | ValidationError] = list(
                    BulkPublishIn.model_validate_json(raw).notifications)
            except ValidationError:
                valid = _one_by_one(raw)
            reply = orjson.dumps({"results": await self._publish(valid)})
        except TocsinError as err:
            await send_error(send, err, self.cors)
            return
        except Exception:
            log.exception("unhandled error in bulk publish")
            await send_error(send, TocsinError("internal"), self.cors)
            return
        await send_json(send, 200, reply, self.cors)

    async def _publish(self, items: list[PublishIn | ValidationError]
                       ) -> list[dict[str, object]]:
        results: list[dict[str, object] | None] = [None] * len(items)
        stored: list[tuple[int, PublishIn]] = []  # through Store.publish_many
        alone: list[tuple[int, PublishIn]] = []  # escalation, or a body it must refuse
        recipients = 0
        for i, body in enumerate(items):
            if isinstance(body, ValidationError):
                results[i] = _failed(error_from_validation(body.errors(), located=False))
                continue
            recipients += len(body.recipients or ())
            if body.escalation is None and body.recipients is not None:
                stored.append((i, body))
            else:
                alone.append((i, body))
        if recipients > BULK_MAX_RECIPIENTS:
            raise TocsinError("too_many_recipients", "A bulk publish can have at most "
                              f"{BULK_MAX_RECIPIENTS:,} recipients in all.", "notifications")
        made = 0  # notifications made, charged once at the end (--rate-publish)

        async def count(n: int) -> None:
            nonlocal made
            made += n + 1  # publish_body charges beyond the first; here every one counts

        async def one(i: int, body: PublishIn) -> None:
            try:
                results[i] = {"status": 201, **await publish_body(
                    self.tocsin, self.publisher.id, body, count)}
            except Exception as exc:
                results[i] = _outcome(exc)

        async def together() -> None:
            if not stored:
                return
            outcomes = await self.tocsin.publish_many(self.publisher.id, [
                PublishItem(body.recipients or [], note_of(body), body.idempotency_key)
                for _, body in stored])
            nonlocal made
            for (i, body), outcome in zip(stored, outcomes, strict=True):
                results[i] = _outcome(outcome)
                if isinstance(outcome, PublishResult) and not outcome.replayed:
                    made += len(set(body.recipients or ()))

        await asyncio.gather(together(), *(one(i, body) for i, body in alone))
        if self.limits.publish is not None:
            await self.limits.charge(self.publisher, made - 1)
        return [r if r is not None else _failed(TocsinError("internal")) for r in results]
