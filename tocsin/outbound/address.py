"""Which addresses an outbound request may go to: a URL's host as the connecting
library sees it, every encoding of an IP address that the C resolver accepts, and
whether an address is a public unicast one. Pure: no I/O, no DNS."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

SPECIAL_NAMES = ("localhost", "local", "internal", "home.arpa", "lan")
"""Names (and their subdomains) that only ever mean this machine or a private network
(RFC 6761, 6762, 8375, ICANN's .internal; .lan by custom): refused without asking DNS."""
NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
"""RFC 6052: the IPv4 address is the last 32 bits (judged as that IPv4 address)."""
NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
"""RFC 8215: local-use translation prefix, never public."""
_DIGITS = {16: re.compile(r"[0-9a-f]*"), 8: re.compile(r"[0-7]+"), 10: re.compile(r"[0-9]+")}


class Refused(httpx.ConnectError):
    """An outbound request to an address the rules do not allow; nothing was sent."""


@dataclass(frozen=True, slots=True)
class LocalService:
    """One service on this machine that a client may name although loopback is
    refused (the demo's own push service): ``http``/``https`` on a loopback address,
    this ``port``, a path under ``path``."""

    port: int
    path: str


@dataclass(frozen=True, slots=True)
class Rules:
    """What one kind of outbound request may reach. By default: public unicast
    addresses only. ``allow_loopback`` (``--push-allow-insecure``, tests) also lets
    loopback through, over ``http`` too; ``local`` lets exactly those services through."""

    allow_loopback: bool = False
    local: tuple[LocalService, ...] = field(default=())
    allow_private: bool = False
    """``--webhook-allow-private``: loopback, private and link-local addresses too,
    over ``http`` as well (tests, the demo, intranet receivers)."""

    def serves_locally(self, port: int) -> bool:
        return any(s.port == port for s in self.local)


def legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """``host`` as an IPv4 address the way ``inet_aton`` (and so ``getaddrinfo``) and
    the WHATWG URL parser read it: 1 to 4 parts, each decimal, octal (leading 0) or
    hex (0x), the last filling the remaining bytes, one trailing dot allowed:
    ``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``127.1``, ``0x7f.1``, ``0`` are
    all addresses. ``None``: not an address in any of these forms (a name)."""
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if not 1 <= len(parts) <= 4:
        return None
    values = []
    for part in parts:
        text = part.lower()
        if text.startswith("0x"):
            base, text = 16, text[2:]
        elif len(text) > 1 and text.startswith("0"):
            base, text = 8, text[1:]
        else:
            base = 10
        if not _DIGITS[base].fullmatch(text):
            return None
        values.append(int(text, base) if text else 0)
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (4 - len(head)):
        return None
    number = last
    for i, v in enumerate(head):
        number += v << (8 * (3 - i))
    return ipaddress.IPv4Address(number)


def literal_ip(host: str) -> IPAddress | None:
    """The address ``host`` (a URL's host, IPv6 without brackets) names literally, in
    any encoding a resolver accepts; ``None`` for a name."""
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            return None
    return legacy_ipv4(host)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries to the same host: IPv4-mapped
    (``::ffff:a.b.c.d``), IPv4-compatible (``::a.b.c.d``), 6to4 (``2002:AABB:CCDD::``),
    NAT64 well-known prefix (``64:ff9b::a.b.c.d``)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in NAT64_WELL_KNOWN or (int(ip) >> 32 == 0 and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def ip_refusal(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public unicast address (``None``: it is)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return "a scoped (zone) address"
        inner = embedded_ipv4(ip)
        if inner is not None:
            why = ip_refusal(inner)
            return None if why is None else f"{why} ({inner} inside IPv6)"
        if ip in NAT64_LOCAL or ip.is_site_local:
            return "a private address"
    checks = (("a loopback", ip.is_loopback), ("an unspecified", ip.is_unspecified),
              ("a link-local", ip.is_link_local), ("a multicast", ip.is_multicast),
              ("a private", ip.is_private), ("a reserved", ip.is_reserved),
              ("a non-public", not ip.is_global))
    for name, hit in checks:
        if hit:
            return f"{name} address"
    return None


def is_loopback(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and (inner := embedded_ipv4(ip)) is not None:
        return inner.is_loopback
    return ip.is_loopback


def names_loopback(host: str) -> bool:
    """``host`` (a URL's host) itself says loopback: an address literal in any encoding,
    or ``localhost`` and its subdomains. A name that merely resolves there does not."""
    host = host.lower().rstrip(".")
    ip = literal_ip(host)
    return _is_local_name(host, "localhost") if ip is None else is_loopback(ip)


def connect_refusal(ip: IPAddress, port: int, rules: Rules, host: str) -> str | None:
    """Why a connection to ``ip``:``port``, resolved from the URL's ``host``, is not
    allowed (``None``: it is). A local service is allowed only to a host that names
    loopback itself: only for those has :func:`check_url` checked the path (and the
    scheme), so another name resolving to loopback cannot reach any path on that port."""
    if is_loopback(ip) and (rules.allow_loopback
                            or (names_loopback(host) and rules.serves_locally(port))):
        return None
    if rules.allow_private and is_private_range(ip):
        return None
    return ip_refusal(ip)


def is_private_range(ip: IPAddress) -> bool:
    """Loopback, private (RFC 1918, ULA) or link-local: what ``allow_private`` lets
    through (never multicast, unspecified or reserved)."""
    if isinstance(ip, ipaddress.IPv6Address) and (inner := embedded_ipv4(ip)) is not None:
        ip = inner
    return (ip.is_loopback or ip.is_link_local or ip.is_private) and not (
        ip.is_unspecified or ip.is_multicast)


def host_of(url: httpx.URL) -> str:
    """The host ``url`` will connect to, as the connecting library (httpx, then the
    resolver) sees it: IDNA-encoded, lower case, without a trailing dot."""
    return url.raw_host.decode("ascii").lower().rstrip(".")


def check_url(url: str | httpx.URL, rules: Rules) -> httpx.URL:
    """``url`` parsed, if a request may be sent to it; else :class:`Refused` saying why.
    The host is judged here as far as it can be without DNS (an address literal in
    any encoding, a special-use name); names are judged at connection time, by the
    addresses they resolve to."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        scheme, port = parsed.scheme, parsed.port
    except (httpx.InvalidURL, ValueError, UnicodeError) as exc:
        raise Refused(f"not a valid URL ({exc})") from None
    if port is not None and not 0 < port < 65536:
        raise Refused(f"port {port} is out of range")
    if scheme not in ("https", "http"):
        raise Refused("must be an https:// URL")
    if parsed.userinfo:
        raise Refused("must not carry credentials (user:password@)")
    host = host_of(parsed)
    if not host or not re.fullmatch(r"[a-z0-9._:-]+", host):
        raise Refused("must name a host (letters, digits, '.', '-')")
    port = port or (443 if scheme == "https" else 80)
    ip = literal_ip(host)
    loopback = names_loopback(host)
    if loopback and _local_service(parsed, port, rules):
        return parsed
    if loopback and rules.allow_loopback:
        return parsed
    if rules.allow_private and (loopback or (ip is not None and is_private_range(ip))):
        return parsed
    if ip is not None:
        why = ip_refusal(ip)
        if why is not None:
            raise Refused(f"{ip} is {why}" if str(ip) == host else f"{host!r} is {ip}, {why}")
        if ip.version == 4 and str(ip) != host:  # what TLS and SNI see is this text
            raise Refused(f"write the address {host!r} as {ip}")
    elif any(_is_local_name(host, name) for name in SPECIAL_NAMES):
        raise Refused(f"{host!r} is a local name")
    if scheme != "https" and not rules.allow_private:
        raise Refused("must be an https:// URL")
    return parsed


def _is_local_name(host: str, name: str) -> bool:
    return host == name or host.endswith("." + name)


def _local_service(url: httpx.URL, port: int, rules: Rules) -> bool:
    """``url`` is under one of the rules' local services (no dot segments or escapes
    in its path: it cannot climb out of the service's prefix)."""
    path = url.raw_path.decode("ascii").split("?", 1)[0]
    if "%" in path or "/." in path:
        return False
    return any(s.port == port and path.startswith(s.path) for s in rules.local)
