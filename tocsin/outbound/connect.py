"""The connection side of the outbound rule: an HTTP client whose every TCP
connection is made to an address that was resolved and checked in the same step, so
a name cannot resolve to a public address when checked and to an internal one when
connected (DNS rebinding). TLS still verifies the certificate for, and sends SNI
with, the URL's host name: only the socket's address is pinned."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterable, Iterable, Iterator
from contextlib import contextmanager

import httpcore
import httpx

from tocsin.outbound.address import IPAddress, Refused, Rules, check_url, connect_refusal

MAX_REPLY_BYTES = 64 * 1024
"""A reply body is read up to this much, the rest dropped with the connection: the
other side is chosen by a client, and push services and webhooks answer in a few
bytes."""

# httpcore's exceptions as httpx's, most specific first (what httpx's own transport does)
_EXCEPTIONS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout), (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout), (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError), (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError), (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextmanager
def _as_httpx() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for theirs, ours in _EXCEPTIONS:
            if isinstance(exc, theirs):
                raise ours(str(exc)) from exc
        raise


async def resolve(host: str, port: int, within: float | None) -> list[IPAddress]:
    """Every address ``host`` resolves to, the way a connection would resolve it (the
    C resolver: /etc/hosts, DNS, and the numeric forms ``inet_aton`` accepts)."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(within):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError:
        raise httpcore.ConnectTimeout(f"resolving {host!r} timed out") from None
    except OSError as exc:
        raise httpcore.ConnectError(f"cannot resolve {host!r}: {exc}") from None
    found: list[IPAddress] = []
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(sockaddr[0])
        if ip not in found:
            found.append(ip)
    return found


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host, refuses the connection if any of its addresses is not
    allowed, then connects to one of exactly those addresses."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int,  # httpcore's signature
                          timeout: float | None = None,  # noqa: ASYNC109
                          local_address: str | None = None,
                          socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
                          ) -> httpcore.AsyncNetworkStream:
        addresses = await resolve(host, port, timeout)
        for ip in addresses:  # all of them: a name with one bad address is refused
            why = connect_refusal(ip, port, self.rules, host)
            if why is not None:
                raise Refused(f"{host!r} resolves to {ip}, {why}")
        failure: Exception = httpcore.ConnectError(f"{host!r} has no address")
        for ip in addresses:
            try:
                return await self._inner.connect_tcp(str(ip), port, timeout, local_address,
                                                     socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure

    async def connect_unix_socket(self, path: str,
                                  timeout: float | None = None,  # noqa: ASYNC109
                                  socket_options: Iterable[httpcore.SOCKET_OPTION] | None
                                  = None) -> httpcore.AsyncNetworkStream:
        raise Refused("outbound requests go over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that checks each request's URL (:func:`check_url`), connects
    through :class:`GuardedBackend`, never uses a proxy, and reads at most
    :data:`MAX_REPLY_BYTES` of a reply."""

    def __init__(self, rules: Rules, limits: httpx.Limits) -> None:
        self.rules = rules
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(), network_backend=GuardedBackend(rules),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = check_url(request.url, self.rules)
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port,
                             target=url.raw_path),
            headers=request.headers.raw, content=request.stream,
            extensions={k: v for k, v in request.extensions.items() if k == "timeout"})
        with _as_httpx():
            reply = await self._pool.handle_async_request(core)
            try:
                body = await _read_capped(reply.stream, MAX_REPLY_BYTES)
            finally:
                await reply.aclose()
        return httpx.Response(reply.status, headers=reply.headers, content=body)

    async def aclose(self) -> None:
        await self._pool.aclose()


async def _read_capped(stream: Iterable[bytes] | AsyncIterable[bytes], limit: int) -> bytes:
    assert isinstance(stream, AsyncIterable)
    parts: list[bytes] = []
    size = 0
    async for part in stream:
        parts.append(part[:limit - size])
        size += len(parts[-1])
        if size >= limit:
            break
    return b"".join(parts)


def client(rules: Rules, timeout: float, limits: httpx.Limits) -> httpx.AsyncClient:
    """An HTTP client for requests to addresses a client of Tocsin gave: every request
    passes :func:`check_url` and every connection the address check; redirects are
    not followed; environment proxies are not used (the connection would then be the
    proxy's, to an address Tocsin never checked)."""
    return httpx.AsyncClient(transport=GuardedTransport(rules, limits), timeout=timeout,
                             follow_redirects=False, trust_env=False)
