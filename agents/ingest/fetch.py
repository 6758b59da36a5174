"""A polite HTTP client for feeds, sitemaps and article pages (aiohttp).

What every request gets:

- **Identity**: ``User-Agent: wirewatch/<version> (+<contact>)``; robots.txt groups are
  matched on the product token ``wirewatch``.
- **robots.txt** (``protego``, Scrapy's parser: wildcards, ``$``, longest match, Allow and
  Disallow, ``Crawl-delay``), fetched once per origin and kept ``robots_ttl`` seconds.
  RFC 9309's rules: a 4xx robots.txt (or too many redirects) allows everything; a 5xx, 429,
  timeout or connection error disallows everything for ``robots_error_ttl`` seconds; a file
  over 512 KiB is read up to there.
- **Per-host limits**: at most ``host_concurrency`` requests at once to one host, and at
  least ``host_interval`` seconds (or the host's Crawl-delay, up to 60 s) between their
  starts; a 429's Retry-After holds every request to the host until then (a 503's holds
  only its source, through the source's backoff).
- **Conditional GET**: ``If-None-Match`` / ``If-Modified-Since`` from the last response's
  ETag / Last-Modified; a 304 is ``not_modified``.
- **Timeouts and retries**: ``timeout`` seconds for a whole request, body included (a slow
  drip is cut there); timeouts, connection errors, 5xx and 429 are tried again up to
  ``attempts`` times with exponential backoff (``backoff``, 2x, 4x...), waiting at least a
  Retry-After when it is at most ``max_retry_wait`` (a longer one ends the fetch and is
  handed back for the source's own backoff).
- **Redirects** followed by hand, at most ``max_redirects`` hops; a loop or a longer chain
  is ``too_many_redirects``. Each hop is checked again: scheme, the SSRF guard, robots.txt.
- **Size caps**: the body is streamed and reading stops past ``max_bytes`` (``too_large``;
  a Content-Length over it is refused before reading). gzip, deflate and brotli are
  decoded by aiohttp chunk by chunk, so a compression bomb stops at the cap too.
- **SSRF guard**: ``agents.webhook.core.refusal_reason``, the webhooks' own guard, judges
  every address a host name resolves to, inside the resolver aiohttp connects with (so the
  address checked is the address used, on every hop), and every literal address: anything
  not public (private, loopback, link-local, shared, multicast, reserved) is refused as
  ``refused`` unless ``allow`` (``WIREWATCH_INGEST_ALLOW``: hosts or CIDRs) names it.

``Fetcher.fetch`` never raises for a network or HTTP problem: it returns a ``Response``
whose ``reason`` is one of ``FETCH_REASONS`` (a metric label).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import ipaddress
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from protego import Protego

from agents.webhook.core import parse_allow_list, refusal_reason

__all__ = ["FETCH_REASONS", "TRANSIENT", "FetchConfig", "Fetcher", "HostGate", "Response",
           "RobotsCache", "parse_retry_after", "user_agent"]

#: Why a fetch failed (a metric label): HTTP 404 / 410 / other 4xx / 429 / 5xx, a timeout,
#: a connection or DNS error, a redirect loop or chain, a body over the cap, robots.txt,
#: the SSRF guard, not a page (a PDF, an image), an answer that is not HTTP sense.
FETCH_REASONS = ("not_found", "gone", "client_error", "rate_limited", "server_error", "timeout",
                 "connection", "too_many_redirects", "too_large", "robots_disallowed",
                 "refused", "not_html", "bad_response")
#: Worth trying again soon.
TRANSIENT = frozenset({"rate_limited", "server_error", "timeout", "connection"})
ROBOTS_TOKEN = "wirewatch"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 65_536
_MAX_CRAWL_DELAY = 60.0
_MAX_ROBOTS_BYTES = 512 * 1024
_MAX_HOSTS = 5_000  # hosts and robots.txt files kept before idle or expired ones are dropped


def user_agent(version: str, contact: str = "") -> str:
    """``wirewatch/<version>`` with ``(+contact)`` when there is one."""
    return f"wirewatch/{version} (+{contact})" if contact else f"wirewatch/{version}"


@dataclass(frozen=True, slots=True)
class FetchConfig:
    user_agent: str = "wirewatch"
    timeout: float = 20.0
    attempts: int = 3
    backoff: float = 1.0
    max_retry_wait: float = 30.0
    max_redirects: int = 5
    host_concurrency: int = 2
    host_interval: float = 1.0
    robots_ttl: float = 3600.0
    robots_error_ttl: float = 600.0
    allow: str = ""  # hosts or CIDRs allowed though not public (tests: 127.0.0.1)


@dataclass(slots=True)
class Response:
    url: str  # the last URL asked (after redirects)
    ok: bool = False
    not_modified: bool = False
    status: int | None = None
    body: bytes = b""
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    reason: str | None = None  # one of FETCH_REASONS when not ok / not_modified
    detail: str = ""
    retry_after: float | None = None
    attempts: int = 0
    seconds: float = 0.0
    final: bool = False  # not worth trying again now (a cached robots.txt failure, a hold)

    @property
    def transient(self) -> bool:
        return self.reason in TRANSIENT


class RefusedAddress(OSError):
    """The SSRF guard refused the address a host name resolves to."""


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, with every address it returns judged by the webhook guard: the
    connection can only go to an address that was checked."""

    def __init__(self, allow: str) -> None:
        self._inner = DefaultResolver()
        self._allow = allow
        self._hosts, _ = parse_allow_list(allow)

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if host.lower().rstrip(".") in self._hosts:
            return results
        for result in results:
            literal = result["host"]
            shown = f"[{literal}]" if ":" in literal else literal
            reason = await refusal_reason(f"http://{shown}/", self._allow)
            if reason:
                raise RefusedAddress(f"{host} resolves to {literal}: {_ours(reason)}")
        return results

    async def close(self) -> None:
        await self._inner.close()


def _ours(reason: str) -> str:
    """The webhook guard's words, with ingest's setting named."""
    return reason.replace("WIREWATCH_WEBHOOK_ALLOW", "WIREWATCH_INGEST_ALLOW")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), clamped to
    [0, 1 day]; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    seconds: float | None
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if moment is None:
            return None
        seconds = moment.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), 86_400.0)


@dataclass(slots=True)
class _Host:
    slots: asyncio.Semaphore
    next_start: float = 0.0
    blocked_until: float = 0.0
    crawl_delay: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class HostGate:
    """Per-host concurrency and spacing of request starts (see the module docstring)."""

    def __init__(self, concurrency: int, interval: float) -> None:
        self.concurrency = max(1, concurrency)
        self.interval = max(0.0, interval)
        self._hosts: dict[str, _Host] = {}

    def _host(self, host: str) -> _Host:
        entry = self._hosts.get(host)
        if entry is None:
            if len(self._hosts) >= _MAX_HOSTS:
                self._prune()
            entry = self._hosts[host] = _Host(asyncio.Semaphore(self.concurrency))
        return entry

    def _prune(self) -> None:
        """Forget idle hosts (an aggregator's feed links to thousands of them)."""
        now = time.monotonic()
        for host, entry in list(self._hosts.items()):
            if (not entry.lock.locked() and entry.slots._value == self.concurrency
                    and max(entry.next_start, entry.blocked_until) < now
                    and not entry.crawl_delay):
                del self._hosts[host]

    def set_crawl_delay(self, host: str, seconds: float) -> None:
        self._host(host).crawl_delay = min(max(seconds, 0.0), _MAX_CRAWL_DELAY)

    def block(self, host: str, seconds: float) -> None:
        entry = self._host(host)
        entry.blocked_until = max(entry.blocked_until, time.monotonic() + seconds)

    def blocked_for(self, host: str) -> float:
        entry = self._hosts.get(host)
        return 0.0 if entry is None else max(0.0, entry.blocked_until - time.monotonic())

    @contextlib.asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        entry = self._host(host)
        async with entry.slots:
            async with entry.lock:  # starts are spaced one after another
                wait = max(entry.next_start, entry.blocked_until) - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                entry.next_start = time.monotonic() + max(self.interval, entry.crawl_delay)
            yield


@dataclass(slots=True)
class _Robots:
    parser: Protego | None  # None with allow_all / disallow_all
    allow_all: bool
    expires: float
    reason: str = "robots_disallowed"  # why nothing is allowed: the robots.txt fetch's failure
    detail: str = ""


class RobotsCache:
    """robots.txt per origin, fetched through the fetcher itself (limits, guard, caps)."""

    def __init__(self, fetcher: Fetcher) -> None:
        self._fetcher = fetcher
        self._entries: dict[str, _Robots] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @staticmethod
    def origin(url: str) -> str:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc.lower()}"

    async def allowed(self, url: str) -> tuple[bool, str, str]:
        """(allowed, reason, detail): the reason is ``robots_disallowed``, or the failure
        that made robots.txt unreachable (a timeout or connection error: the page would not
        answer either)."""
        origin = self.origin(url)
        entry = self._entries.get(origin)
        if entry is None or entry.expires < time.monotonic():
            lock = self._locks.setdefault(origin, asyncio.Lock())
            async with lock:
                entry = self._entries.get(origin)
                if entry is None or entry.expires < time.monotonic():
                    entry = await self._load(origin)
                    if len(self._entries) >= _MAX_HOSTS:
                        now = time.monotonic()
                        for key in [k for k, e in self._entries.items() if e.expires < now]:
                            del self._entries[key]
                            self._locks.pop(key, None)
                    self._entries[origin] = entry
        if entry.parser is None:
            return entry.allow_all, entry.reason, entry.detail
        allowed = bool(entry.parser.can_fetch(url, ROBOTS_TOKEN))
        return allowed, "robots_disallowed", f"robots.txt of {origin} disallows it"

    async def _load(self, origin: str) -> _Robots:
        config = self._fetcher.config
        response = await self._fetcher.fetch(f"{origin}/robots.txt", kind="robots",
                                             max_bytes=_MAX_ROBOTS_BYTES, truncate=True,
                                             check_robots=False, attempts=1)
        now = time.monotonic()
        if response.ok:
            parser = Protego.parse(response.body.decode("utf-8", "replace"))
            delay = parser.crawl_delay(ROBOTS_TOKEN)
            if delay:
                self._fetcher.gate.set_crawl_delay(urlsplit(origin).hostname or "", float(delay))
            return _Robots(parser, True, now + config.robots_ttl)
        if response.reason in ("not_found", "gone", "client_error", "too_many_redirects"):
            return _Robots(None, True, now + config.robots_ttl)
        if response.reason == "refused":
            return _Robots(None, True, now + config.robots_error_ttl)  # the fetch refuses too
        # 5xx, 429, timeouts, connection errors: "unreachable", so nothing is allowed.
        reason = response.reason if response.reason in ("timeout", "connection") \
            else "robots_disallowed"
        return _Robots(None, False, now + config.robots_error_ttl, reason,
                       f"robots.txt unreachable ({response.detail}): nothing is fetched")


class Fetcher:
    """One per process: a session, the host gate and the robots cache (``start`` /
    ``close``, or ``async with``)."""

    def __init__(self, config: FetchConfig, observe: Any = None) -> None:
        self.config = config
        self.gate = HostGate(config.host_concurrency, config.host_interval)
        self.robots = RobotsCache(self)
        self._observe = observe  # callable(kind, Response) after each fetch, for metrics
        self._session: aiohttp.ClientSession | None = None
        self._allow_hosts, _ = parse_allow_list(config.allow)

    async def start(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(resolver=GuardedResolver(self.config.allow),
                                             limit=100, ttl_dns_cache=60)
            self._session = aiohttp.ClientSession(
                connector=connector, trust_env=False, auto_decompress=True,
                headers={"User-Agent": self.config.user_agent})

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Fetcher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def fetch(self, url: str, *, kind: str = "feed", etag: str | None = None,
                    last_modified: str | None = None, max_bytes: int = 10 * 1024 * 1024,
                    accept: str | None = None, truncate: bool = False,
                    check_robots: bool = True, attempts: int | None = None) -> Response:
        """GET ``url`` politely (see the module docstring); never raises for the network."""
        await self.start()
        started = time.monotonic()
        tries = attempts or self.config.attempts
        response = Response(url)
        for attempt in range(1, tries + 1):
            response = await self._once(url, kind, etag, last_modified, max_bytes, accept,
                                        truncate, check_robots)
            response.attempts = attempt
            if response.ok or response.not_modified or not response.transient or response.final:
                break
            wait = self.config.backoff * 2 ** (attempt - 1)
            if response.retry_after is not None:
                wait = max(wait, response.retry_after)
            if attempt == tries or wait > self.config.max_retry_wait:
                break
            await asyncio.sleep(wait)
        response.seconds = time.monotonic() - started
        if self._observe is not None:
            self._observe(kind, response)
        return response

    @staticmethod
    def _is_literal(host: str) -> bool:
        try:
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False
        return True

    async def _once(self, url: str, kind: str, etag: str | None, last_modified: str | None,
                    max_bytes: int, accept: str | None, truncate: bool, check_robots: bool
                    ) -> Response:
        assert self._session is not None
        current = url
        visited: set[str] = set()
        for _hop in range(self.config.max_redirects + 1):
            visited.add(current)
            try:
                parts = urlsplit(current)
                host = (parts.hostname or "").lower()
            except ValueError as exc:
                return Response(current, reason="bad_response", detail=f"bad URL: {exc}")
            if parts.scheme not in ("http", "https") or not host:
                return Response(current, reason="bad_response",
                                detail=f"not an http(s) URL: {current[:200]}")
            # aiohttp does not resolve a literal address, so the resolver never sees it.
            if self._is_literal(host) and host not in self._allow_hosts:
                reason = await refusal_reason(current, self.config.allow)
                if reason:
                    return Response(current, reason="refused", detail=_ours(reason))
            if check_robots:
                allowed, reason, detail = await self.robots.allowed(current)
                if not allowed:
                    return Response(current, reason=reason, detail=detail, final=True)
            blocked = self.gate.blocked_for(host)
            if blocked > self.config.max_retry_wait:
                return Response(current, reason="rate_limited", retry_after=blocked, final=True,
                                detail=f"{host} asked us to wait {blocked:.0f} s (Retry-After)")
            headers = {"Accept": accept or "*/*",
                       "Accept-Encoding": "gzip, deflate, br"}
            if etag:
                headers["If-None-Match"] = etag
            if last_modified:
                headers["If-Modified-Since"] = last_modified
            async with self.gate.slot(host):
                result = await self._request(current, headers, max_bytes, truncate)
            if isinstance(result, str):  # a redirect's target
                target = result
                if target in visited:
                    return Response(current, reason="too_many_redirects",
                                    detail=f"redirect loop back to {target[:200]}")
                current = target
                continue
            if result.retry_after and result.reason == "rate_limited":
                # 429 is about us and the whole host; a 503's Retry-After is about that
                # resource (its source backs off by it), so other paths go on.
                self.gate.block(host, result.retry_after)
            return result
        return Response(current, reason="too_many_redirects",
                        detail=f"more than {self.config.max_redirects} redirects from {url[:200]}")

    async def _request(self, url: str, headers: dict[str, str], max_bytes: int,
                       truncate: bool) -> Response | str:
        assert self._session is not None
        timeout = aiohttp.ClientTimeout(total=self.config.timeout,
                                        sock_connect=min(10.0, self.config.timeout))
        try:
            async with self._session.get(url, headers=headers, allow_redirects=False,
                                         timeout=timeout) as resp:
                status = resp.status
                if status in _REDIRECTS:
                    location = resp.headers.get("Location")
                    if not location:
                        return Response(url, status=status, reason="bad_response",
                                        detail=f"HTTP {status} without a Location")
                    try:
                        return urljoin(url, location.strip())
                    except ValueError:
                        return Response(url, status=status, reason="bad_response",
                                        detail=f"bad Location {location[:200]!r}")
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                if status == 304:
                    return Response(url, status=status, not_modified=True,
                                    etag=resp.headers.get("ETag"),
                                    last_modified=resp.headers.get("Last-Modified"))
                if status >= 400 or status < 200:
                    reason = ("not_found" if status == 404 else "gone" if status == 410
                              else "rate_limited" if status == 429
                              else "server_error" if status >= 500
                              else "client_error" if status >= 400 else "bad_response")
                    return Response(url, status=status, reason=reason, detail=f"HTTP {status}",
                                    retry_after=retry_after)
                if status >= 300:
                    return Response(url, status=status, reason="bad_response",
                                    detail=f"HTTP {status}")
                declared = resp.content_length
                if declared is not None and declared > max_bytes and not truncate:
                    return Response(url, status=status, reason="too_large",
                                    detail=f"Content-Length {declared:,} over {max_bytes:,} bytes")
                body = bytearray()
                async for chunk in resp.content.iter_chunked(_CHUNK):
                    body += chunk
                    if len(body) > max_bytes:
                        if truncate:
                            del body[max_bytes:]
                            break
                        return Response(url, status=status, reason="too_large",
                                        detail=f"body over {max_bytes:,} bytes; stopped reading")
                return Response(url, ok=True, status=status, body=bytes(body),
                                content_type=resp.headers.get("Content-Type"),
                                etag=resp.headers.get("ETag"),
                                last_modified=resp.headers.get("Last-Modified"))
        except TimeoutError:
            return Response(url, reason="timeout",
                            detail=f"no complete answer within {self.config.timeout:g} s")
        except aiohttp.ClientConnectorError as exc:
            cause = exc.os_error
            if isinstance(cause, RefusedAddress):
                return Response(url, reason="refused", detail=str(cause))
            return Response(url, reason="connection", detail=f"{type(exc).__name__}: {exc}")
        except (aiohttp.ClientPayloadError, aiohttp.ClientResponseError) as exc:
            return Response(url, reason="bad_response", detail=f"{type(exc).__name__}: {exc}")
        except aiohttp.ClientError as exc:
            return Response(url, reason="connection", detail=f"{type(exc).__name__}: {exc}")
        except (OSError, ValueError, UnicodeError) as exc:  # a bad host label, an odd URL
            return Response(url, reason="connection", detail=f"{type(exc).__name__}: {exc}")
