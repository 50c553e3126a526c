"""``GET/PUT /api/users/{user}`` (publisher only): the user record, whose fields the
channels keep (``tocsin.kernel.channel.UserFields``: ``email`` by the email channel,
``webhook`` by the webhook channel, ...). A body names any of them; every field is
checked before any is written; the reply is the record (``user`` and each channel's
fields it holds). No channel is named here: the route follows the registry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path
from starlette.responses import Response

from tocsin.errors import TocsinError
from tocsin.kernel.channel import UserFields
from tocsin.routing import ERRORS, PublisherCaller, json_response
from tocsin.text import Name, name_error

MAX_USER_CHARS = 200
UserPath = Annotated[Name, Path(min_length=1, max_length=MAX_USER_CHARS,
                                description="user id")]


def check_user(user: str) -> str:
    # the name rule (text.py): PostgreSQL refuses NUL in text (a 500, not a 400)
    if not user or len(user) > MAX_USER_CHARS or name_error(user) is not None:
        raise TocsinError("invalid_field", f"user must be 1 to {MAX_USER_CHARS} characters, "
                          "none of them control characters.", "user")
    return user


def users_router(channels: Sequence[object]) -> APIRouter | None:
    """The route over every channel keeping user fields (``None``: no such channel)."""
    owners = [c for c in channels if isinstance(c, UserFields)]
    if not owners:
        return None
    fields = [f for c in owners for f in c.user_fields]
    shown = " or ".join(fields)
    router = APIRouter(tags=["users"])

    @router.get("/api/users/{user}", responses=ERRORS)
    async def get_user(user: UserPath, _: PublisherCaller) -> Response:
        """The user record (404 for a user never stored)."""
        check_user(user)
        record: dict[str, Any] = {}
        for c in owners:
            record.update(await c.read_user(user) or {})
        if not record:
            raise TocsinError("not_found", f"No user {user!r} (PUT /api/users/{{user}} "
                              "stores one).")
        return json_response({"user": user, **record})

    @router.put("/api/users/{user}", responses=ERRORS, openapi_extra={"requestBody": {
        "required": True, "content": {"application/json": {"schema": {
            "type": "object", "properties": {f: {} for f in fields},
            "additionalProperties": False}}}}})
    async def put_user(user: UserPath, _: PublisherCaller,
                       body: Annotated[Any, Body()] = None) -> Response:
        """Set (or with ``null`` clear) the fields given (``email``, ``webhook``, ...:
        each registered channel's)."""
        check_user(user)
        if not isinstance(body, dict):
            raise TocsinError("invalid_field", f"The body must be a JSON object of {shown}.",
                              fields[0])
        extra = sorted(set(body) - set(fields))
        if extra:
            raise TocsinError("invalid_field", f"Unknown field {extra[0]!r}.", extra[0])
        if not body:
            raise TocsinError("missing_field", f"Give {shown} (null clears it).", fields[0])
        checked = [(c, c.check_user_fields({k: v for k, v in body.items()
                                            if k in c.user_fields}))
                   for c in owners if set(c.user_fields) & set(body)]
        record: dict[str, Any] = {}
        for c, value in checked:
            record.update(await c.write_user(user, value))
        return json_response({"user": user, **record})

    return router
