"""A tiny TCP proxy for tests that can lose replies: the request reaches the server,
the server's reply never reaches the client (the connection is closed instead)."""

from __future__ import annotations

import contextlib
import socket
import threading

from tests.support.listener import LoopbackServer


class DroppingProxy(LoopbackServer):
    """Forwards 127.0.0.1:``port`` to ``upstream``; the first ``drop`` connections get
    their request through and then lose the reply."""

    def __init__(self, upstream_port: int, drop: int = 1) -> None:
        self.upstream_port = upstream_port
        self.drop = drop
        self.dropped = 0
        self._open: list[socket.socket] = []
        super().__init__()
        self.url = f"http://127.0.0.1:{self.port}"
    def cut(self) -> None:
        """Drops every connection open now (a network failure); new ones go through."""
        with self._lock:
            open_now, self._open = self._open, []
        for s in open_now:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def _handle(self, client: socket.socket, n: int) -> None:
        lose = n <= self.drop
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        with self._lock:
            self._open += [client, upstream]
        threading.Thread(target=self._pump, args=(client, upstream, False),
                         daemon=True).start()
        threading.Thread(target=self._pump, args=(upstream, client, lose),
                         daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, lose: bool) -> None:
        try:
            while data := src.recv(65536):
                if lose:  # the server answered: the client never hears it
                    with self._lock:
                        self.dropped += 1
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
