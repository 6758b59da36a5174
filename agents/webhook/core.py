"""Delivering an alert to a watch's webhook.

The target guard refuses URLs that resolve to private, loopback, link-local, multicast,
reserved or unspecified addresses (a webhook must not become a way to probe the network the
worker runs in), unless ``WIREWATCH_WEBHOOK_ALLOW`` names the host or a CIDR holding it.
Every resolved address must pass, so a name with one public and one private address is
refused. (aiohttp resolves again when it connects; DNS rebinding between the two lookups is
not defended against.)

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


def _forbidden(address: IPAddress) -> bool:
    return (address.is_private or address.is_loopback or address.is_link_local
            or address.is_multicast or address.is_reserved or address.is_unspecified)


async def refusal_reason(url: str, allow: str) -> str | None:
    """Why ``url`` may not be a webhook target, or None when it may."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"not an http(s) URL: {url!r}"
    host = parts.hostname.lower()
    hosts, networks = parse_allow_list(allow)
    if host in hosts:
        return None
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, parts.port or (443 if parts.scheme == "https" else 80),
            type=socket.SOCK_STREAM)
    except OSError as exc:
        return f"cannot resolve {host}: {exc}"
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if _forbidden(address) and not any(address in net for net in networks):
            return (f"{host} resolves to {address}, a private/loopback/link-local address; "
                    "allow it with WIREWATCH_WEBHOOK_ALLOW")
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
