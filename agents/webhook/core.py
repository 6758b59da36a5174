"""Delivering an alert to a watch's webhook.

The target guard refuses URLs that resolve to an address that is not public (a webhook must
not become a way to probe the network the worker runs in), unless ``WIREWATCH_WEBHOOK_ALLOW``
names the host or a CIDR holding it. Public is ``ipaddress``'s ``is_global`` (so private,
shared/carrier-grade NAT 100.64.0.0/10, loopback, link-local, documentation and reserved
ranges are refused), and not multicast, reserved or site-local (which ``is_global`` lets
through on some Python versions); an IPv6 address that carries an IPv4 one (IPv4-mapped,
6to4, Teredo) must carry a public one. Every resolved address must pass, so a name with one
public and one private address is refused; a literal address is judged without DNS. (aiohttp
resolves again when it connects; DNS rebinding between the two lookups is not defended
against.) ``refusal_reason`` never raises: a malformed URL is a reason too.

``deliver`` POSTs the alert JSON with a timeout, retrying with exponential backoff on
connection errors, timeouts and 5xx/429; a 4xx other than 429 is final.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

__all__ = ["Delivery", "deliver", "refusal_reason", "parse_allow_list"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Delivery:
    ok: bool
    attempts: int
    detail: str  # last status or error, for logs and dead letters


def parse_allow_list(allow: str) -> tuple[set[str], list[Network]]:
    """``"localhost,10.0.0.0/8,hooks.internal"`` -> ({hosts}, [networks])."""
    hosts: set[str] = set()
    networks: list[Network] = []
    for item in (part.strip() for part in allow.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            hosts.add(item.lower())
    return hosts, networks


def _public(address: IPAddress) -> bool:
    """A globally reachable unicast address (see the module docstring)."""
    if (not address.is_global or address.is_multicast or address.is_reserved
            or address.is_private or address.is_loopback or address.is_link_local
            or address.is_unspecified):
        return False
    if isinstance(address, ipaddress.IPv6Address):
        if address.is_site_local:
            return False
        teredo = address.teredo
        for inner in (address.ipv4_mapped, address.sixtofour, teredo and teredo[1]):
            if inner and not _public(inner):
                return False
    return True


def _shown(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


async def refusal_reason(url: str, allow: str) -> str | None:
    """Why ``url`` may not be a webhook target, or None when it may. Never raises."""
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError as exc:  # a bad port or IPv6 literal
        return f"malformed URL {_shown(url)}: {exc}"
    if parts.scheme not in ("http", "https") or not host:
        return f"not an http(s) URL: {_shown(url)}"
    host = host.lower()
    hosts, networks = parse_allow_list(allow)
    if host in hosts:
        return None
    try:
        addresses: list[IPAddress] = [ipaddress.ip_address(host)]  # a literal: no DNS
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port or (443 if parts.scheme == "https" else 80),
                type=socket.SOCK_STREAM)
        except (OSError, UnicodeError, ValueError) as exc:  # UnicodeError: a label too long
            return f"cannot resolve {_shown(host)}: {exc}"
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses:
        return f"{_shown(host)} resolves to no address"
    for address in addresses:
        if not _public(address) and not any(address in net for net in networks):
            return (f"{_shown(host)} resolves to {address}, which is not a public address "
                    "(private, shared, loopback, link-local, multicast or reserved); allow it "
                    "with WIREWATCH_WEBHOOK_ALLOW")
    return None


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


async def deliver(session: aiohttp.ClientSession, url: str, body: bytes, *, timeout: float,
                  attempts: int, backoff: float = 0.5) -> Delivery:
    """POST ``body`` to ``url``; retry transient failures with exponential backoff."""
    detail = "not attempted"
    for attempt in range(1, attempts + 1):
        try:
            async with session.post(url, data=body,
                                    headers={"Content-Type": "application/json"},
                                    timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                detail = f"HTTP {response.status}"
                if response.status < 300:
                    return Delivery(True, attempt, detail)
                if not _retryable(response.status):
                    return Delivery(False, attempt, detail)
        except (aiohttp.ClientError, TimeoutError) as exc:
            detail = f"{type(exc).__name__}: {exc}"
        if attempt < attempts:
            await asyncio.sleep(backoff * 2 ** (attempt - 1))
    return Delivery(False, attempts, detail)
