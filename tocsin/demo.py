"""The demo (``tocsin demo``): a product-like page and the demo-only routes behind it.

Installed by :func:`tocsin.app.create_app` when ``settings.demo`` is true. It adds:

- ``GET /`` and ``/demo/…``: the demo page (``tocsin/web/demo``);
- ``GET /demo/api/token?user=alice``: a subscriber token for one of the demo users,
  allowed to read and post ``demo:*`` topics;
- ``POST /demo/api/send``: the playground (publish a notification to a demo user);
- ``GET``/``POST /demo/api/generator``: the simulated activity generator (likes that
  group, comments, order status updates, an urgent incident alert);
- ``POST /demo/api/quiet``: "Simulate a quiet period" (docs/attention.md): a short DND
  for a demo user, a few notifications that arrive silently during it, and, when it
  ends, the server's one ``digest`` event ("3 notifications while you were away");
- ``POST /demo/api/incident``: the incident scenario (docs/escalation.md): an urgent
  alert to the on-call user that escalates to the next demo user, then the third,
  every ``waitSeconds`` unless someone acknowledges it;
- beyond the tab (docs/push.md, docs/email.md): a local push service mounted at
  ``/demo/push-service`` (the one insecure push endpoint the demo accepts: loopback,
  its own port, that path) and a local SMTP server on a free port (``--smtp-url``
  unless one was given); ``POST /demo/api/reach``
  gives the demo users an email address and a "simulated closed-tab device" (a push
  subscription to that local service), ``GET /demo/api/sent`` lists what both got.

None of this exists outside demo mode: these routes hand out tokens to anyone.

Longer than most modules on purpose: the whole demo-only feature (routes, generator,
seed, dev credentials) stays in one file, imported only when demo or dev mode asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import random
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.responses import FileResponse, Response

from tocsin.api.deps import json_response
from tocsin.api.models import check_url
from tocsin.auth import mint_token
from tocsin.errors import TocsinError
from tocsin.service import Tocsin
from tocsin.store.base import ListQuery, NewNotification, NewTopicEvent
from tocsin.text import Name, Text

log = logging.getLogger("tocsin.demo")

DEMO_DIR = Path(__file__).parent / "web" / "demo"
USERS: tuple[str, ...] = ("alice", "bob", "carol")
TOPIC = "demo:activity"
TOPIC_PATTERNS = ["demo:*"]
TOKEN_TTL_S = 12 * 3600
PUBLISHER = "demo"
EXTRA_ACTORS = ("dana", "eve", "frank", "grace")

Priority = Literal["urgent", "high", "medium", "low"]


def display(user: str) -> str:
    return user[:1].upper() + user[1:]


def article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


class SendIn(BaseModel):
    """A playground notification."""

    model_config = ConfigDict(populate_by_name=True)

    to: list[str] = Field(min_length=1, max_length=3, description="demo users")
    sender: str | None = Field(default=None, alias="from", description="the demo user sending")
    type: Name = Field(default="message", min_length=1, max_length=64)
    title: Text = Field(min_length=1, max_length=200)
    body: Text = Field(default="", max_length=4096)
    priority: Priority = "medium"
    url: str | None = Field(default=None, max_length=2048)
    group_key: Name | None = Field(default=None, alias="groupKey", max_length=200)

    _url = field_validator("url")(check_url)  # the API's rule: absolute http(s) only
    source: Name | None = Field(default="playground", max_length=64)


class IncidentIn(BaseModel):
    """The incident scenario: who is on call, and how long each step waits for an ack."""

    model_config = ConfigDict(populate_by_name=True)

    on_call: str = Field(alias="onCall", description="the demo user paged first")
    wait_seconds: int = Field(default=30, alias="waitSeconds", ge=5, le=600)


def rotation(on_call: str) -> list[str]:
    """The demo's on-call order starting with ``on_call``: alice -> bob -> carol -> alice."""
    i = USERS.index(_user(on_call))
    return [*USERS[i:], *USERS[:i]]


class QuietIn(BaseModel):
    """A simulated quiet period: DND for ``seconds``, ``count`` silent notifications."""

    user: str
    seconds: int = Field(default=8, ge=2, le=600)
    count: int = Field(default=3, ge=1, le=10)


class ReachIn(BaseModel):
    """Set up reaching demo users beyond the tab (all of them when ``user`` is unset)."""

    user: str | None = None
    email_after: int = Field(default=10, alias="emailAfter", ge=0, le=3600)


LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
SENT_SHOWN = 20
PUSH_SERVICE_PATH = "/demo/push-service"


def exposure_warning(host: str) -> str | None:
    """What to say when the demo listens on ``host`` and that is not a loopback
    address (``None``: it is): the demo hands out tokens to anyone who asks."""
    import ipaddress

    name = host.strip("[]").lower()
    try:
        loopback = ipaddress.ip_address(name).is_loopback
    except ValueError:
        loopback = name == "localhost"
    if loopback:
        return None
    return (f"WARNING: the demo is listening on {host}, not on a loopback address. "
            "Anyone who can reach this port can mint tokens for the demo users, read and "
            "send their notifications, and use every demo route. Run it on 127.0.0.1 "
            "(the default) unless every machine on this network is yours.")


@dataclass
class Reach:
    """What the demo reaches people with when their tab is closed: a local push service
    (in this process, at ``/demo/push-service``) and a local SMTP server."""

    push: Any
    """:class:`tocsin.devtools.push_service.LocalPushService`"""
    sink: Any
    """:class:`tocsin.devtools.smtp_sink.SmtpSink`, or None with the user's own SMTP server"""
    owners: dict[str, str] = field(default_factory=dict)
    """device name -> demo user"""

    @classmethod
    def install(cls, app: FastAPI) -> Reach:
        """Mount the push service, point the email channel at a local SMTP server (unless
        one was given) and accept push endpoints of that service, and no other
        insecure one (anyone can mint a demo token: a blanket loopback allowance would
        let them make the server POST to any local port): demo mode only."""
        from tocsin.devtools.push_service import LocalPushService
        from tocsin.devtools.smtp_sink import SmtpSink

        settings = app.state.settings
        app.state.tocsin.push.accept_local(settings.port, PUSH_SERVICE_PATH + "/")
        sink = None
        if not settings.smtp_url:
            with socket.socket() as sock:  # the port now: the URL is needed before start
                sock.bind(("127.0.0.1", 0))
                port = int(sock.getsockname()[1])
            sink = SmtpSink("127.0.0.1", port)
            settings.smtp_url = sink.url  # read by the email channel when the service starts
            if not settings.smtp_from:
                settings.smtp_from = "Tocsin demo <demo@example.com>"
        reach = cls(LocalPushService(), sink)
        app.mount(PUSH_SERVICE_PATH, reach.push.app)
        return reach

    def start(self, tasks: list[asyncio.Task[Any]]) -> None:
        """Start the SMTP server; it stops when the app's tasks are cancelled."""
        sink = self.sink
        if sink is None:
            return
        sink.start()

        async def hold() -> None:
            try:
                await asyncio.Event().wait()
            finally:
                sink.stop()

        tasks.append(asyncio.create_task(hold(), name="tocsin-demo-smtp"))

    async def set_up(self, service: Tocsin, user: str, base: str,
                     email_after: int) -> dict[str, Any]:
        """An email address, one simulated closed-tab device, and (if the user has no
        choice of their own for it) the playground's ``message`` type by push and by
        email after ``email_after`` s unread."""
        email = f"{user}@example.com"
        await service.email.put_user(user, {"email": email})
        label = f"{display(user)}'s closed-tab device"
        device = next((d for d, u in self.owners.items() if u == user), None)
        if device is None:
            sub = self.push.create_device(base, label)
            device = str(sub["endpoint"]).rsplit("/", 1)[-1]
            await service.push.subscribe(user, sub["endpoint"], sub["keys"]["p256dh"],
                                         sub["keys"]["auth"], "Tocsin demo (simulated)")
            self.owners[device] = user
        prefs = copy.deepcopy(await service.attention.get(user))  # shares the defaults' dicts
        prefs.pop("defaults", None)
        types = prefs.setdefault("types", {})
        if "message" not in types:
            types["message"] = {"channels": ["inbox", "interrupt", "push", "email"],
                                "minPriority": "low", "pushMinPriority": "medium",
                                "emailAfter": email_after}
            await service.attention.put(user, prefs)
        return {"user": user, "email": email, "device": label}

    def sent(self) -> dict[str, Any]:
        """What the push service and the SMTP server received, newest first (the
        decrypted push payload without its read token)."""
        pushes = []
        for m in reversed(list(self.push.received)[-SENT_SHOWN:]):
            p = m["payload"] if isinstance(m["payload"], dict) else {}
            pushes.append({"user": self.owners.get(m["device"]), "device": m["label"],
                           "status": m["status"], "at": m["at"], "title": p.get("title"),
                           "body": p.get("body"), "priority": p.get("priority"),
                           "urgency": m["headers"].get("Urgency")})
        emails = []
        if self.sink is not None:
            for e in reversed(list(self.sink.messages)[-SENT_SHOWN:]):
                emails.append({"to": e["to"], "subject": e["subject"], "at": e["at"]})
        return {"push": pushes, "email": emails, "smtp": self.sink is not None,
                "devices": [{"user": u, "device": self.push.devices[d].label}
                            for d, u in self.owners.items() if d in self.push.devices]}


HOOKS_PATH = "/demo/hooks"
HOOK_BODY_MAX = 64 * 1024
CHAT_TARGET = "demo-chat"
BACKEND_WEBHOOK = "demo-backend"


@dataclass
class Hooks:
    """The demo's two webhook receivers, on this server (``/demo/hooks/...``): a "chat
    room" fed by a Slack-format target of the webhook channel, and an "app backend"
    subscribed to every event webhook, which verifies each signature (Standard
    Webhooks) before listing the event. Only these two paths on this port are
    reachable from the server (no blanket loopback allowance): demo mode only."""

    secret: str
    chat: list[dict[str, Any]] = field(default_factory=list)
    backend: list[dict[str, Any]] = field(default_factory=list)
    chat_target: bool = False

    @classmethod
    def install(cls, app: FastAPI) -> Hooks:
        from tocsin.outbound.signing import new_secret

        hooks = cls(new_secret())
        service: Tocsin = app.state.tocsin
        service.event_webhooks.accept_local(app.state.settings.port, HOOKS_PATH + "/")
        chat_channel = next((c for c in service.channels if c.name == "webhook"), None)
        accept = getattr(chat_channel, "accept_local", None)
        if accept is not None:  # the chat room is this server's own /demo/hooks/chat
            accept(app.state.settings.port, HOOKS_PATH + "/")

        @app.post(HOOKS_PATH + "/backend", include_in_schema=False)
        async def backend(request: Request) -> Response:
            body = await request.body()
            if len(body) > HOOK_BODY_MAX:
                return json_response({"ok": False}, 413)
            verified = hooks.verify(body, request.headers)
            try:
                event = json.loads(body)
            except ValueError:
                event = {}
            hooks.keep(hooks.backend, {
                "id": request.headers.get("webhook-id"), "verified": verified,
                "type": event.get("type"), "data": event.get("data"),
                "at": service.kernel.clock()})
            return json_response({"ok": verified}, 200 if verified else 401)

        @app.post(HOOKS_PATH + "/chat", include_in_schema=False)
        async def chat(request: Request) -> Response:
            body = await request.body()
            try:
                message = json.loads(body) if len(body) <= HOOK_BODY_MAX else {}
            except ValueError:
                message = {}
            hooks.keep(hooks.chat, {"text": str(message.get("text") or "")[:2000],
                                    "verified": hooks.verify(body, request.headers),
                                    "at": service.kernel.clock()})
            return json_response({"ok": True})

        return hooks

    def verify(self, body: bytes, headers: Any) -> bool:
        """The Standard Webhooks check a receiver makes: the signature over
        ``{id}.{timestamp}.{body}`` under the secret, and a timestamp within 5 minutes."""
        import hmac
        import time

        from tocsin.outbound.signing import headers as sign

        msg_id, stamp = headers.get("webhook-id"), headers.get("webhook-timestamp")
        given = headers.get("webhook-signature") or ""
        if not msg_id or not stamp or not stamp.isdigit() \
                or abs(time.time() - int(stamp)) > 300:
            return False
        want = sign(self.secret, msg_id, int(stamp), body)["webhook-signature"]
        return any(hmac.compare_digest(want, s) for s in given.split())

    @staticmethod
    def keep(into: list[dict[str, Any]], item: dict[str, Any]) -> None:
        into.insert(0, item)
        del into[SENT_SHOWN:]

    async def set_up(self, service: Tocsin, port: int) -> None:
        """Subscribe the app backend to every event; give the chat room a Slack-format
        target when the webhook channel is there (``put_target``)."""
        from tocsin.webhooks.service import EVENT_TYPES

        base = f"http://127.0.0.1:{port}{HOOKS_PATH}"
        await service.event_webhooks.put(BACKEND_WEBHOOK, {
            "url": f"{base}/backend", "events": list(EVENT_TYPES), "secret": self.secret})
        channel = next((c for c in service.channels if c.name == "webhook"), None)
        put_target = getattr(channel, "put_target", None)
        if put_target is not None:
            await put_target(CHAT_TARGET, {"url": f"{base}/chat", "format": "slack",
                                           "secret": self.secret})
            self.chat_target = True

    def received(self) -> dict[str, Any]:
        return {"chat": self.chat, "backend": self.backend, "chatTarget": self.chat_target}


def device_base(request: Request) -> str:
    """Where this server's push service is reachable by the server itself: the page's
    own loopback address, else 127.0.0.1, on the port the server listens on (the
    only insecure push endpoints the demo accepts)."""
    url = request.url
    host = url.hostname or "127.0.0.1"
    if host not in LOOPBACK:
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    port = request.app.state.settings.port or url.port
    return f"http://{host}:{port}{PUSH_SERVICE_PATH}"


class GeneratorIn(BaseModel):
    running: bool
    interval_ms: int = Field(default=2500, alias="intervalMs", ge=200, le=60_000)


@dataclass
class Generator:
    """The simulated activity: one event every ``interval_s`` while running."""

    service: Tocsin
    interval_s: float = 2.5
    task: asyncio.Task[None] | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    rng: random.Random = field(default_factory=random.Random)
    step: int = 0
    orders: dict[str, int] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def start(self, interval_s: float) -> None:
        self.interval_s = interval_s
        if self.running:
            return
        self.task = asyncio.create_task(self._loop(), name="tocsin-demo-generator")
        self.tasks.append(self.task)

    async def stop(self) -> None:
        task, self.task = self.task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database may be busy; keep the demo alive
                log.warning("demo generator step failed: %r", exc)
            await asyncio.sleep(self.interval_s * self.rng.uniform(0.6, 1.4))

    async def tick(self) -> None:
        """One simulated event: mostly likes and comments, sometimes orders, rarely incidents."""
        self.step += 1
        roll = self.rng.random()
        if self.step % 25 == 0 or roll < 0.02:
            await self.incident()
        elif roll < 0.45:
            await self.like()
        elif roll < 0.75:
            await self.comment()
        else:
            await self.order()

    def other_actor(self, user: str) -> str:
        return self.rng.choice([a for a in (*USERS, *EXTRA_ACTORS) if a != user])

    async def like(self) -> None:
        """A few likes on one post, a moment apart: the server groups them live into one
        row ("Eve, Dana and 1 other · 3") that moves to the top (docs/grouping.md)."""
        user = self.rng.choice(USERS)
        for i in range(self.rng.choice([1, 2, 3])):
            if i:
                await asyncio.sleep(0.6)
            await self.one_like(user)

    async def one_like(self, user: str) -> None:
        actor = self.other_actor(user)
        await notify(self.service, [user], NewNotification(
            type="like", title=f"{display(actor)} liked your post",
            body="“Shipping the new onboarding flow today 🚀”", priority="low",
            group_key=f"likes:{user}:onboarding-post", actor=display(actor), source="social"),
            activity=f"{display(actor)} liked {display(user)}'s post", actor=actor)

    async def comment(self) -> None:
        user = self.rng.choice(USERS)
        actor = self.other_actor(user)
        text = self.rng.choice([
            "Looks great — can we demo it on Friday?", "I left a note on the copy.",
            "Ship it!", "Does this work on mobile too?", "Nice work on the empty states.",
        ])
        await notify(self.service, [user], NewNotification(
            type="comment", title=f"{display(actor)} commented on your post", body=text,
            priority="medium", actor=display(actor), source="social"),
            activity=f"{display(actor)} commented on {display(user)}'s post", actor=actor)

    async def order(self) -> None:
        user = self.rng.choice(USERS)
        steps = ["confirmed", "packed", "shipped", "out for delivery", "delivered"]
        n = self.orders.get(user, 0)
        self.orders[user] = n + 1
        status = steps[n % len(steps)]
        number = 1040 + (n // len(steps)) * 7 + USERS.index(user)
        priority: Priority = "high" if status == "out for delivery" else "medium"
        await notify(self.service, [user], NewNotification(
            type="order", title=f"Order #{number} {status}",
            body=f"Your order #{number} is {status}.", priority=priority, source="shop",
            url=f"https://shop.example.com/orders/{number}"),
            activity=f"{display(user)}'s order #{number} is {status}", actor="shop")

    async def incident(self) -> None:
        rate = self.rng.choice([7, 12, 18, 25])
        await notify(self.service, list(USERS), NewNotification(
            type="incident", title=f"Incident: checkout API error rate at {rate}%",
            body="On-call has been paged. Follow the status page for updates.",
            priority="urgent", source="monitoring",
            url="https://status.example.com/incidents/checkout"),
            activity=f"Monitoring raised an urgent incident (error rate {rate}%)",
            actor="monitoring")


async def notify(service: Tocsin, to: list[str], note: NewNotification, *,
                 activity: str, actor: str | None) -> dict[str, str]:
    """Publish a notification and tell the activity feed about it."""
    result = await service.publish(PUBLISHER, to, note)
    await service.add_topic_event(TOPIC, NewTopicEvent(
        type=note.type, title=activity, actor=actor,
        data={"recipients": to, "priority": note.priority}))
    return result.ids


async def seed(service: Tocsin) -> None:
    """Welcome notifications for demo users whose inbox is empty, so the page has content."""
    for user in USERS:
        page = await service.store.list_notifications(user, ListQuery(limit=1))
        if page.items:
            continue
        notes = [
            NewNotification(type="welcome", title=f"Welcome to the Tocsin demo, {display(user)}",
                            body="Open a second window as another user and send them something "
                            "from the playground.", priority="medium", source="tocsin"),
            NewNotification(type="like", title="Dana liked your post", priority="low",
                            group_key=f"likes:{user}:onboarding-post", actor="Dana",
                            source="social"),
            NewNotification(type="like", title="Eve liked your post", priority="low",
                            group_key=f"likes:{user}:onboarding-post", actor="Eve",
                            source="social"),
            NewNotification(type="comment", title="Frank commented on your post",
                            body="Can we get this into Friday's release?", actor="Frank",
                            source="social"),
        ]
        for note in notes:
            await service.publish(PUBLISHER, [user], note)
    await service.add_topic_event(TOPIC, NewTopicEvent(
        type="system", title="The demo server started", actor="tocsin"))


def credentials_path(database_url: str) -> Path | None:
    """Where the demo keeps its dev key and secret: next to its SQLite file (``demo.db`` ->
    ``demo.db.dev-credentials.json``), so a restart keeps open tabs' tokens valid and a
    new database gets new credentials. None for other databases (or in-memory SQLite)."""
    from sqlalchemy.engine import make_url

    try:
        url = make_url(database_url)
    except Exception:
        return None
    if not url.drivername.startswith("sqlite") or not url.database or url.database == ":memory:":
        return None
    db = Path(url.database).expanduser()
    return db.with_name(db.name + ".dev-credentials.json")


def keep_dev_credentials(settings: Any) -> None:
    """Fill a missing API key / JWT secret of the demo from its credentials file, creating
    it (mode 0600) with new random ones the first time."""
    path = credentials_path(settings.database_url)
    if path is None or (settings.api_keys and settings.jwt_secret):
        return
    import json
    import os
    import secrets

    saved: dict[str, str] = {}
    with contextlib.suppress(OSError, ValueError):
        loaded = json.loads(path.read_text())
        if isinstance(loaded, dict):
            saved = {k: v for k, v in loaded.items() if isinstance(v, str) and v}
    if "apiKey" not in saved or "jwtSecret" not in saved:
        saved = {"apiKey": "dev-" + secrets.token_urlsafe(18),
                 "jwtSecret": secrets.token_urlsafe(32)}
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(saved, f)
    if not settings.api_keys:
        settings.api_keys = [saved["apiKey"]]
    if not settings.jwt_secret:
        settings.jwt_secret = saved["jwtSecret"]


def embed_snippet(base: str) -> str:
    """The lines a page on another origin needs to show this demo's notifications."""
    return (f'<script type="module" src="{base}/static/tocsin/define.js"></script>\n'
            f"<tocsin-bell></tocsin-bell> <tocsin-status></tocsin-status> "
            f"<tocsin-toasts></tocsin-toasts>\n"
            f'<script type="module">\n'
            f'  import {{ connect }} from "{base}/static/tocsin/tocsin.js";\n'
            f'  const token = async () => (await (await fetch("{base}/demo/api/token?user=alice"))'
            f".json()).token;\n"
            f'  connect({{ url: "{base}", token }});\n'
            f"</script>")


def _user(user: str) -> str:
    if user not in USERS:
        raise TocsinError("invalid_field", f"Demo users are {', '.join(USERS)}.", "user")
    return user


def _service(request: Request) -> Tocsin:
    service: Tocsin = request.app.state.tocsin
    return service


def install(app: FastAPI) -> None:
    """Add the demo page and its routes to ``app`` (demo mode only)."""
    router = APIRouter(prefix="/demo/api", tags=["demo"])
    holder: dict[str, Generator] = {}
    reach = Reach.install(app)
    hooks = Hooks.install(app)

    def generator(request: Request) -> Generator:
        gen = holder.get("g")
        if gen is None:
            gen = holder["g"] = Generator(_service(request), tasks=request.app.state.tasks)
        return gen

    @router.get("/token")
    async def token(
        request: Request, user: Annotated[str, Query(description="alice, bob or carol")]
    ) -> Response:
        """A subscriber token for a demo user (demo mode only)."""
        secret: str = request.app.state.settings.jwt_secret
        tok, expires_at = mint_token(secret, _user(user), TOPIC_PATTERNS, TOKEN_TTL_S)
        return json_response({"token": tok, "user": user, "expiresAt": expires_at,
                              "topic": TOPIC, "users": list(USERS)})

    @router.post("/send", status_code=201)
    async def send(request: Request, body: SendIn) -> Response:
        """The playground: publish a notification to one or more demo users."""
        to = [_user(u) for u in dict.fromkeys(body.to)]
        sender = _user(body.sender) if body.sender else None
        note = NewNotification(
            type=body.type, title=body.title, body=body.body, priority=body.priority,
            url=body.url or None, group_key=body.group_key or None,
            actor=display(sender) if sender else None, source=body.source or None)
        who = display(sender) if sender else "Someone"
        names = ", ".join(display(u) for u in to)
        ids = await notify(_service(request), to, note, actor=sender,
                           activity=f"{who} sent {names} {article(body.priority)} "
                                    f"{body.priority} notification")
        return json_response({"ids": ids}, 201)

    @router.post("/incident", status_code=201)
    async def incident(request: Request, body: IncidentIn) -> Response:
        """The incident scenario: page the on-call user; unless someone acknowledges,
        escalate to the next demo user after ``waitSeconds``, then to the third."""
        from tocsin.escalation.policy import Policy, Step

        service = _service(request)
        order = rotation(body.on_call)
        name = f"demo-oncall-{order[0]}"
        # the chat room hears every step too, once the webhook channel gave it a target
        chat = {"webhooks": [CHAT_TARGET]} if hooks.chat_target else {}
        await service.escalation.put_policy(name, Policy(steps=[
            Step(targets=[u], wait_seconds=body.wait_seconds, skip_if_nobody_active=False,
                 **chat)
            for u in order]))
        opened = await service.escalation.open(PUBLISHER, name, [], NewNotification(
            type="incident", title="Incident: checkout API is returning errors",
            # who holds it is each step's (data.escalation.targets), not the opener's
            body="Acknowledge to stop the escalation.",
            priority="urgent", source="monitoring",
            url="https://status.example.com/incidents/checkout"))
        await service.add_topic_event(TOPIC, NewTopicEvent(
            type="incident", actor="monitoring",
            title=f"Monitoring paged {display(order[0])} (escalates to {display(order[1])} "
                  f"after {body.wait_seconds} s unless acknowledged)",
            data={"incident": opened["incident"], "onCall": order[0]}))
        return json_response({**opened, "onCall": order[0], "next": order[1],
                              "waitSeconds": body.wait_seconds}, 201)

    @router.post("/quiet")
    async def quiet(request: Request, body: QuietIn) -> Response:
        """Simulate a quiet period: DND for ``seconds`` (replacing the user's own), then
        ``count`` notifications. The reply says what the server decided for each (the
        page words its text from it, never from what it expected): ``reasons`` counts
        the silent ones by reason, ``skipped`` the ones not delivered, ``interrupting``
        the rest; ``digest`` is the summary the quiet ones wait for, ``{count, at}`` (at
        the end of the quiet period: later than the DND when quiet hours cover its
        end), or null when none waits for one."""
        from tocsin.attention.decide import QUIET_REASONS, decide

        service = _service(request)
        user = _user(body.user)
        prefs = await service.attention.get(user)
        prefs.pop("defaults", None)
        until = service.kernel.clock() + body.seconds * 1000
        prefs["dnd"] = {"until": until}
        await service.attention.put(user, prefs)
        await service.add_topic_event(TOPIC, NewTopicEvent(
            type="quiet", actor=user,
            title=f"{display(user)} turned on do not disturb for {body.seconds} s"))
        gen = generator(request)
        reasons: dict[str, int] = {}
        skipped = interrupting = 0
        digest_at = 0
        for i in range(body.count):
            actor = gen.other_actor(user)
            note = [
                NewNotification(type="comment", title=f"{display(actor)} commented on your post",
                                body="Quick question about the rollout plan.",
                                priority="medium", actor=display(actor), source="social"),
                NewNotification(type="message", title=f"{display(actor)} sent you a message",
                                body="Got a minute later?", priority="high",
                                actor=display(actor), source="chat"),
                NewNotification(type="like", title=f"{display(actor)} liked your post",
                                priority="low", actor=display(actor), source="social",
                                group_key=f"likes:{user}:onboarding-post"),
            ][i % 3]
            result = await service.publish(PUBLISHER, [user], note)
            reason = (result.silent or {}).get(user)
            if user in (result.skipped or {}):
                skipped += 1
            elif reason is None:
                interrupting += 1
            else:
                reasons[reason] = reasons.get(reason, 0) + 1
                if reason in QUIET_REASONS:
                    # the period it was held for, by the publish's own rule and clock
                    stored = await service.attention.get(user)
                    _, period = decide(stored, {"types": stored.get("defaults") or {}}, note.type,
                                       note.priority, service.kernel.clock())
                    digest_at = max(digest_at, period[1] if period else until)
        held = sum(n for r, n in reasons.items() if r in QUIET_REASONS)
        return json_response({
            "user": user, "until": until, "count": body.count,
            "silent": sum(reasons.values()), "reasons": reasons, "skipped": skipped,
            "interrupting": interrupting,
            "digest": {"count": held, "at": digest_at} if held else None})

    @router.get("/generator")
    async def generator_state(request: Request) -> Response:
        gen = generator(request)
        return json_response({"running": gen.running, "intervalMs": int(gen.interval_s * 1000)})

    @router.post("/generator")
    async def generator_set(request: Request, body: GeneratorIn) -> Response:
        """Start or stop the simulated activity."""
        gen = generator(request)
        if body.running:
            gen.start(body.interval_ms / 1000)
        else:
            await gen.stop()
        return json_response({"running": gen.running, "intervalMs": int(gen.interval_s * 1000)})

    @router.post("/reach")
    async def reach_set_up(request: Request, body: ReachIn) -> Response:
        """Reach demo users beyond the tab: each gets an email address and a simulated
        closed-tab device (a push subscription to this server's local push service)."""
        users = [_user(body.user)] if body.user else list(USERS)
        base = device_base(request)
        done = [await reach.set_up(_service(request), u, base, body.email_after) for u in users]
        return json_response({"users": done})

    @router.get("/hooks")
    async def hooks_received(request: Request) -> Response:
        """What the demo's chat room and app backend received, newest first."""
        return json_response(hooks.received())

    @router.get("/sent")
    async def sent(request: Request) -> Response:
        """What was sent beyond the tab: pushes the local push service received
        (decrypted) and emails the local SMTP server got."""
        return json_response(reach.sent())

    app.include_router(router)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(DEMO_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/demo", StaticFiles(directory=DEMO_DIR, html=True), name="demo")

    async def on_start(app: FastAPI) -> None:
        service: Tocsin = app.state.tocsin
        reach.start(app.state.tasks)
        try:
            await hooks.set_up(service, app.state.settings.port)
        except Exception as exc:  # the rest of the demo works without them
            log.warning("demo webhooks not set up: %r", exc)
        try:
            await seed(service)
        except Exception as exc:  # a demo without seed content still works
            log.warning("demo seed failed: %r", exc)

    app.state.on_start.append(on_start)
