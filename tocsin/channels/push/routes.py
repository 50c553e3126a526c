"""Web Push routes (docs/push.md): the server's VAPID public key, a user's device
subscriptions, and marking a pushed notification read from the device."""

from __future__ import annotations

from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from tocsin.auth import Subscriber
from tocsin.channels.push.validate import MAX_ENDPOINT_CHARS
from tocsin.errors import TocsinError
from tocsin.routing import ERRORS, AnyCaller, SubscriberCaller, json_response
from tocsin.text import Name


class _Vapid(Protocol):
    @property
    def public_key(self) -> str: ...


class PushApi(Protocol):
    """What the routes call (``PushChannel``)."""

    async def vapid(self) -> _Vapid: ...

    async def subscribe(self, user: str, endpoint: str, p256dh: str, auth: str,
                        user_agent: str | None) -> str: ...

    async def subscriptions(self, user: str) -> list[dict[str, Any]]: ...

    async def unsubscribe(self, user: str, id: str) -> bool: ...

    async def mark_read(self, token: str) -> None: ...

PUBLIC_KEY_MAX_AGE_S = 3600


class PushKeys(BaseModel):
    model_config = ConfigDict(extra="ignore")
    p256dh: str = Field(min_length=1, max_length=200,
                        description="the browser's P-256 public key (base64url, 65 bytes)")
    auth: str = Field(min_length=1, max_length=100,
                      description="the browser's auth secret (base64url, 16 bytes)")


class PushSubscriptionIn(BaseModel):
    """``PushSubscription.toJSON()`` as the browser gives it."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    endpoint: str = Field(min_length=1, max_length=MAX_ENDPOINT_CHARS,
                          description="the push service URL (https://)")
    expiration_time: float | None = Field(default=None, alias="expirationTime")
    keys: PushKeys


class PushSubscriptionOut(BaseModel):
    id: str


class PushSubscriptionItem(BaseModel):
    id: str
    endpoint: str = Field(description="the push service's origin only")
    user_agent: str | None = Field(alias="userAgent")
    created_at: int = Field(alias="createdAt", description="when this device last registered")
    last_sent_at: int | None = Field(alias="lastSentAt")


class PushSubscriptionList(BaseModel):
    items: list[PushSubscriptionItem]


class PublicKeyOut(BaseModel):
    public_key: str = Field(alias="publicKey", description="base64url of the 65-byte "
                            "uncompressed P-256 point: PushManager.subscribe's "
                            "applicationServerKey")


class ReadTokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1, max_length=4096, description="a push message's readToken")


SubscriptionId = Annotated[Name, Path(max_length=40)]


def routes(push: PushApi) -> APIRouter:
    """The channel's routes, bound to ``push``."""
    router = APIRouter(tags=["push"])

    @router.get("/api/push/vapid-public-key", response_model=PublicKeyOut, responses=ERRORS)
    async def vapid_public_key() -> Response:
        """The server's VAPID public key (no credentials needed; the same on every node)."""
        vapid = await push.vapid()
        r = json_response({"publicKey": vapid.public_key})
        r.headers["Cache-Control"] = f"public, max-age={PUBLIC_KEY_MAX_AGE_S}"
        return r

    @router.post("/api/push-subscriptions", status_code=201, response_model=PushSubscriptionOut,
                 responses=ERRORS)
    async def subscribe(caller: AnyCaller, body: PushSubscriptionIn,
                        request: Request) -> Response:
        """Register this device for the caller (a user token): the body is the browser's
        ``PushSubscription.toJSON()``. The same endpoint again answers the same id (and
        moves the device to this user). At most 20 per user: one more removes the oldest."""
        if not isinstance(caller, Subscriber):
            raise TocsinError("forbidden", "A push subscription belongs to a user's browser: "
                              "register it with that user's token, not a publisher API key.")
        sid = await push.subscribe(caller.user, body.endpoint, body.keys.p256dh,
                                   body.keys.auth, request.headers.get("user-agent"))
        return json_response({"id": sid}, 201)

    @router.get("/api/push-subscriptions", response_model=PushSubscriptionList, responses=ERRORS)
    async def list_subscriptions(caller: SubscriberCaller) -> Response:
        """The caller's devices, newest first (the endpoint's origin only)."""
        return json_response({"items": await push.subscriptions(caller.user)})

    @router.delete("/api/push-subscriptions/{id}", status_code=204, responses=ERRORS)
    async def unsubscribe(id: SubscriptionId, caller: SubscriberCaller) -> Response:
        """Forget one of the caller's devices (another user's id: 404)."""
        if not await push.unsubscribe(caller.user, id):
            raise TocsinError("not_found", "No such push subscription.")
        return Response(status_code=204)

    @router.post("/api/push/read", status_code=204, responses=ERRORS)
    async def read_from_push(body: ReadTokenIn) -> Response:
        """Mark a pushed notification read with the ``readToken`` its message carried (the
        service worker has no session). No credentials needed; any other token is refused."""
        await push.mark_read(body.token)
        return Response(status_code=204)

    return router
