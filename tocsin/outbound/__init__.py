"""Every request Tocsin makes to an address a client gave it (push endpoints now,
webhooks next) goes through this package: one rule, checked when the address is
registered and again at send time, against the address actually connected to.

- :func:`check_url` (at registration, and again before each request): ``https://``,
  no credentials, no address literal that is not public in any encoding a resolver
  accepts (``0x7f000001``, ``2130706433``, ``127.1``, ``0177.0.0.1``, ``0``,
  ``[::ffff:127.0.0.1]``, ...; a public IPv4 address only as a dotted quad), no
  special-use name (``localhost``, ``*.local``, ...).
- :func:`client`: an httpx client whose connections resolve the host, refuse it if
  any address is loopback, private, link-local, unspecified, multicast, reserved or
  otherwise not global (IPv4 inside IPv6 judged as that IPv4), and connect to the
  checked address itself (no second lookup: DNS rebinding cannot switch it). No
  redirects, no environment proxies, replies read up to 64 KiB.

:class:`Rules` says what one kind of request may reach beyond that: loopback for
tests (``--push-allow-insecure``), or exactly one local service (the demo's push
service).

:mod:`tocsin.outbound.signing` signs a request per Standard Webhooks (``webhook-id``,
``webhook-timestamp``, ``webhook-signature``), for the webhook channel and the event
webhooks alike.
"""

from tocsin.outbound.address import LocalService, Refused, Rules, check_url
from tocsin.outbound.connect import MAX_REPLY_BYTES, client

__all__ = ["MAX_REPLY_BYTES", "LocalService", "Refused", "Rules", "check_url", "client"]
