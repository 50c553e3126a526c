"""The local push service (``tocsin.channels.push.LocalPushService``) on its own uvicorn
in a thread, on a random loopback port: stopped and started again on the same port
(the same devices), so a test can take the push service away and bring it back."""

from __future__ import annotations

import threading
from typing import Any

import uvicorn

from tests.support.server import free_port
from tests.support.wait import wait_until
from tocsin.devtools.push_service import LocalPushService


class PushServiceThread:
    def __init__(self, service: LocalPushService | None = None) -> None:
        self.service = service or LocalPushService()
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/push"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> PushServiceThread:
        from starlette.applications import Starlette
        from starlette.routing import Mount

        app = Starlette(routes=[Mount("/push", app=self.service.app)])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        server, thread = self._server, self._thread

        def started() -> bool:
            if not thread.is_alive():
                raise RuntimeError("the local push service did not start")
            return server.started

        wait_until(started, 10, "the local push service to start", interval=0.02)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)
        self._server = self._thread = None

    def device(self, label: str = "") -> dict[str, Any]:
        return self.service.create_device(self.base, label)

    def wait(self, endpoint: str, n: int = 1, status: int | None = 201,
             within: float = 15) -> list[dict[str, Any]]:
        """The first ``n`` messages ``endpoint`` received (with ``status``), waiting up
        to ``within`` seconds for them."""
        wait_until(lambda: len(self.service.messages(endpoint, status)) >= n, within,
                   lambda: f"{n} push messages: {self.service.messages(endpoint)}", 0.05)
        return self.service.messages(endpoint, status)

    def wait_payload(self, endpoint: str, nid: str, within: float = 30) -> dict[str, Any]:
        """The decrypted payload of the push of notification ``nid`` to ``endpoint``."""
        def payload() -> dict[str, Any] | None:
            for m in self.service.messages(endpoint, status=201):
                p = m["payload"]
                if isinstance(p, dict) and p.get("id") == nid:
                    return p
            return None

        return wait_until(payload, within, lambda: (
            f"the push of {nid}; received {list(self.service.received)}"))
