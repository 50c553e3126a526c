"""A local SMTP server that keeps what it receives: for the tests and the demo.

    sink = SmtpSink()            # 127.0.0.1, a free port
    sink.start()                 # aiosmtpd's Controller: its own thread and loop
    ... tocsin serve --smtp-url {sink.url} ...
    sink.messages[-1]["subject"]
    sink.stop()

Each message is a dict ``{from, to: [...], subject, text, html, headers, at}``
(parsed with the ``email`` package; ``at`` in ms since the epoch), kept in a bounded
deque (the oldest go first). With ``login=(user, password)`` the server requires
that login (AUTH PLAIN/LOGIN, allowed without TLS: it is a loopback test server).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import warnings
from collections import deque
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

MAX_MESSAGES = 1000


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def parse_message(raw: bytes, mail_from: str, rcpt_tos: list[str]) -> dict[str, Any]:
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    text = msg.get_body(("plain",))
    page = msg.get_body(("html",))
    headers: dict[str, str] = {}
    for name, value in msg.items():
        headers[name] = f"{headers[name]}, {value}" if name in headers else str(value)
    return {
        "from": mail_from, "to": list(rcpt_tos), "subject": str(msg.get("Subject", "")),
        "text": _content(text), "html": _content(page),
        "headers": headers, "at": int(time.time() * 1000),
    }


def _content(part: object) -> str:
    return part.get_content().replace("\r\n", "\n") if isinstance(part, EmailMessage) else ""


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode()
        self.sink.record(parse_message(raw, str(envelope.mail_from or ""),
                                          [str(r) for r in envelope.rcpt_tos]))
        return "250 OK"


class SmtpSink:
    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 login: tuple[str, str] | None = None, maxlen: int = MAX_MESSAGES) -> None:
        self.host = host
        self.port = port
        self.login = login
        self.messages: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self._arrived = threading.Condition()
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def start(self) -> SmtpSink:
        if self.port == 0:  # the Controller checks readiness by connecting: a real port
            self.port = _free_port(self.host)
        kw: dict[str, Any] = {}
        if self.login is not None:
            kw = {"authenticator": self._authenticate, "auth_required": True,
                  "auth_require_tls": False}
        # AUTH without TLS: on purpose (a loopback test server); aiosmtpd warns per
        # connection, in its own thread
        warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
        # aiosmtpd logs every connection at INFO on "mail.log" (the Controller's own
        # readiness check included): noise from a local sink, shown at `tocsin demo`'s start.
        quiet = logging.getLogger("mail.log")
        if quiet.level == logging.NOTSET:
            quiet.setLevel(logging.WARNING)
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port, **kw)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    async def astart(self) -> SmtpSink:
        return self.start()

    async def astop(self) -> None:
        self.stop()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def clear(self) -> None:
        self.messages.clear()

    def wait(self, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Block until at least ``count`` messages are kept (or ``timeout``); all kept."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.messages) < count and time.monotonic() < deadline:
                self._arrived.wait(max(0.0, deadline - time.monotonic()))
        return list(self.messages)

    def record(self, message: dict[str, Any]) -> None:
        with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope,
                      mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and self.login is not None and (
            auth_data.login.decode(), auth_data.password.decode()) == self.login
        return AuthResult(success=ok, handled=False)  # aiosmtpd answers 535 itself
