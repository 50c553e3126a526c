"""A TCP listener on a random loopback port that counts the connections it gets:
what an outbound request that must not be made would reach (tests of
``tocsin.outbound``). Each connection's request head is read, then ``reply`` is
sent (if any) and the connection closed."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
from types import TracebackType
from typing import Self

# issue 21's list, each with an explicit port so that a test can listen there
ENCODINGS = ["https://0x7f000001:{p}/", "https://2130706433:{p}/", "https://127.1:{p}/",
             "https://0x7f.1:{p}/", "https://0:{p}/", "https://0177.0.0.1:{p}/",
             "https://127\uff0e0\uff0e0\uff0e1:{p}/", "https://127\u30020\u30020\u30021:{p}/",
             "https://localhost.:{p}/", "https://LocalHost:{p}/", "https://a.localhost:{p}/",
             "https://127.0.0.1.:{p}/", "https://0x7f.0.0.1:{p}/", "https://017700000001:{p}/",
             "https://[::1]:{p}/", "https://[::ffff:127.0.0.1]:{p}/", "https://[::ffff:7f00:1]:{p}/",
             "https://[0:0:0:0:0:ffff:7f00:1]:{p}/", "https://[::127.0.0.1]:{p}/",
             "https://[2002:7f00:1::]:{p}/", "https://[64:ff9b::127.0.0.1]:{p}/",
             "https://[::]:{p}/", "http://127.0.0.1:{p}/"]


def recv_until(sock: socket.socket, marker: bytes, limit: int) -> bytes:
    """What ``sock`` sends until ``marker`` is in it, ``limit`` bytes came, or it closed."""
    data = b""
    while marker not in data and len(data) < limit:
        more = sock.recv(4096)
        if not more:
            break
        data += more
    return data


class LoopbackServer:
    """A socket listening on a random port of ``host`` that counts the connections it
    accepts and hands each to ``_handle`` with its number (from 1), on the accepting
    thread. A subclass sets its own attributes before calling ``__init__``."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.connections = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server((host, 0))
        self.port = int(self._listener.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                n = self.connections
            self._handle(conn, n)

    def _handle(self, conn: socket.socket, n: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._listener.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class CountingListener(LoopbackServer):
    def __init__(self, reply: bytes = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
                 host: str = "127.0.0.1") -> None:
        self.reply = reply
        self.requests: list[bytes] = []
        super().__init__(host)

    def _handle(self, conn: socket.socket, n: int) -> None:
        threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(10)
            head = recv_until(conn, b"\r\n\r\n", 65536)
            with self._lock:
                self.requests.append(head)
            if self.reply:
                conn.sendall(self.reply)


def loopback_names() -> list[str]:
    """Names of /etc/hosts that resolve to loopback addresses only (none of
    ``tocsin.outbound``'s special-use names): what a client could register."""
    names = []
    try:
        with open("/etc/hosts") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    for line in lines:
        for name in line.split("#")[0].split()[1:]:
            if "localhost" in name or name in names:
                continue
            try:
                addrs = {ipaddress.ip_address(i[4][0]) for i in socket.getaddrinfo(name, 80)}
            except OSError:
                continue
            if addrs and all(a.is_loopback for a in addrs):
                names.append(name)
    return names
