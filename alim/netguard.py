"""Where ALİM may send an HTTP request on a partner's behalf (webhook endpoints).

A partner's URL must not turn the server into a probe of its own network: the host is resolved
and every address it resolves to must be public — not loopback, private, link-local, multicast,
reserved or unspecified, in any spelling (`localhost`, `[::1]`, `0x7f000001`, `2130706433`,
`::ffff:127.0.0.1`) — unless an operator allows its network (`ALIM_WEBHOOK_ALLOWED_NETWORKS`,
e.g. a partner's VPN or the tests' 127.0.0.1 receivers). No credentials in the URL. Checked at
registration and again before each delivery (the name may resolve elsewhere by then).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence

import httpx

from alim.errors import InvalidRequest

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(InvalidRequest):
    code = "webhook_target_refused"


def networks(values: Sequence[str]) -> tuple[IpNetwork, ...]:
    return tuple(ipaddress.ip_network(v, strict=False) for v in values)


def _public(ip: IpAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _url(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise InvalidRequest("webhook url is not a valid URL", code="invalid_webhook_url") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidRequest("webhook url must be http(s) with a host", code="invalid_webhook_url")
    if parsed.userinfo:
        raise InvalidRequest(
            "webhook url must not carry credentials (sign with the webhook secret instead)",
            code="invalid_webhook_url",
        )
    return parsed


async def check_target(url: str, allowed: Sequence[IpNetwork] = ()) -> None:
    """Raise InvalidRequest / TargetRefused (422) unless `url` may be requested. A name that
    does not resolve (yet) passes: nothing can be reached through it, and each delivery checks
    again."""
    parsed = _url(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        infos = await asyncio.to_thread(
            socket.getaddrinfo, parsed.host, port, type=socket.SOCK_STREAM
        )
    except (socket.gaierror, UnicodeError):
        return
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not _public(ip) and not any(ip in network for network in allowed):
            raise TargetRefused("webhook url points to a private, loopback or reserved address")
