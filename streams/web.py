"""Guard rails for the worker's web server, which runs on the agents' event loop (issue 17).

Faust serves its pages (aiohttp) on the same asyncio loop as the agents, so every request
handled is time the pipeline does not get. Measured with ``bench/http_load.py`` (200
clients looping on ``/metrics`` and ``/watches/`` with 5,000 watches, plus 200 slow-loris
sockets): no article got through in 120 s and ``/healthz`` timed out. Three things keep that
from happening:

- **Cached bodies** (``CachedBody``): ``/metrics`` (``generate_latest``, 2-5 ms for ~260
  series) is made again only once it is older than 20 times what making it took, so at most
  5 % of the loop however many clients ask, and at the usual cost the page is at most
  ~60 ms old. The watch listing is made once per watch set (agents/watch/api.py).
- **A budget of loop time for requests** (``RequestGate``, an aiohttp middleware on every
  request, 404s included): it fills at ``share`` (10 %) of wall time, up to ``burst``
  (50 ms); each request spends what its handler took plus an estimate of aiohttp's own work
  (``base_cost``, 0.5 ms: a trivial page measured 0.3 ms of worker CPU) and of writing its
  body (``byte_cost``, 1.5 ns a byte: the 0.9 MB listing of 5,000 watches measured 1 ns).
  While it is spent, requests wait in arrival order, at most ``concurrency`` run at once,
  and each admitted one runs on a later turn of the loop. A waiting request costs the loop
  nothing and its client sends nothing more until it is answered, so however many clients
  loop on the API, HTTP takes about ``share`` of the loop and the agents the rest; a lone
  scrape never waits. Past ``max_waiting`` waiting requests the answer is 503 with
  ``Retry-After`` (not reached by the 200-client bench: it answers every request, slower).
  Liveness and readiness (``/healthz``, ``/readyz``) skip the queue, up to
  ``priority_per_second`` a second (their cost still counts).
- **Connections** (``GuardedRunner``): a connection that has not sent a complete request
  within ``keepalive_timeout`` seconds (15; a slow-loris trickling header bytes, or an idle
  keep-alive connection) is closed, where aiohttp's own default is an hour. Past
  ``max_connections`` open connections (half the descriptor limit, 100 to 1,000) a new one
  closes the oldest, so a flood of slow connections exhausts no file descriptors and cannot
  lock a newer client (a probe) out.

What is left is measured, not assumed: ``bench/http_load.py`` and
tests/integration/test_http_load.py compare the pipeline's rate with and without the load.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import resource
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_server import Server

__all__ = ["CachedBody", "GuardedRunner", "RequestGate", "default_max_connections",
           "install"]

log = logging.getLogger("wirewatch.web")

PRIORITY_PATHS = frozenset({"/healthz", "/readyz"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class CachedBody:
    """``make()``'s bytes, made again only once they are older than ``factor`` times what
    the last make took (clamped to ``[min_ttl, max_ttl]`` seconds)."""

    def __init__(self, make: Callable[[], bytes], *, factor: float = 20.0,
                 min_ttl: float = 0.0, max_ttl: float = 2.0) -> None:
        self._make = make
        self.factor, self.min_ttl, self.max_ttl = factor, min_ttl, max_ttl
        self._body: bytes | None = None
        self._expires = 0.0
        self.builds = 0

    def get(self) -> bytes:
        now = time.monotonic()
        if self._body is None or now >= self._expires:
            started = time.perf_counter()
            self._body = self._make()
            cost = time.perf_counter() - started
            self._expires = now + min(self.max_ttl, max(self.min_ttl, self.factor * cost))
            self.builds += 1
        return self._body


class RequestGate:
    """Admission for HTTP handlers on the agents' loop (see the module docstring).

    A budget of loop time: it fills at ``share`` seconds per second up to ``burst``; each
    request spends what its handler took plus an estimate of aiohttp's own work (parsing,
    headers: ``base_cost``) and of writing its body (``byte_cost`` per byte). While the
    budget is spent, requests wait in arrival order; at most ``concurrency`` run at once.
    Past ``max_waiting`` waiting requests the answer is 503 with ``Retry-After``.
    ``/healthz`` and ``/readyz`` skip the queue (their cost still counts), up to
    ``priority_per_second``; past that they queue like the rest."""

    def __init__(self, *, share: float = 0.1, burst: float = 0.05, base_cost: float = 5e-4,
                 byte_cost: float = 1.5e-9, concurrency: int = 2, max_waiting: int = 1000,
                 retry_after: int = 1, priority_per_second: float = 20.0) -> None:
        self.share, self.burst = share, burst
        self.base_cost, self.byte_cost = base_cost, byte_cost
        self.concurrency, self.max_waiting = concurrency, max_waiting
        self.retry_after = retry_after
        self.priority_per_second = priority_per_second
        self.running = 0
        self.rejected = 0
        self.spent = 0.0  # seconds charged, in all
        self._queue: collections.deque[asyncio.Future[None]] = collections.deque()
        self._budget = burst
        self._stamp = time.monotonic()
        self._timer: asyncio.TimerHandle | None = None
        self._tokens = priority_per_second
        self._refilled = self._stamp

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def _refill(self) -> None:
        now = time.monotonic()
        self._budget = min(self.burst, self._budget + (now - self._stamp) * self.share)
        self._stamp = now

    def _priority_token(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.priority_per_second,
                           self._tokens + (now - self._refilled) * self.priority_per_second)
        self._refilled = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def _admit(self) -> None:
        """Hand free slots to the longest-waiting requests while there is budget; when it
        is spent, look again once it has refilled."""
        while self._queue and self.running < self.concurrency:
            self._refill()
            if self._budget <= 0:
                if self._timer is None:
                    delay = -self._budget / self.share + 1e-4
                    self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)
                return
            waiter = self._queue.popleft()
            if not waiter.done():
                self.running += 1
                waiter.set_result(None)  # it runs on a later turn of the loop

    def _on_timer(self) -> None:
        self._timer = None
        self._admit()

    async def _acquire(self) -> None:
        if not self._queue and self.running < self.concurrency:
            self._refill()
            if self._budget > 0:
                self.running += 1
                return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(waiter)
        self._admit()
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release(0.0)  # admitted as it was cancelled: pass the slot on
            else:
                with contextlib.suppress(ValueError):
                    self._queue.remove(waiter)
            raise

    def _release(self, cost: float) -> None:
        self.running -= 1
        self._charge(cost)
        self._admit()

    def _charge(self, cost: float) -> None:
        self._refill()
        self._budget -= cost
        self.spent += cost

    def _cost(self, seconds: float, response: web.StreamResponse | None) -> float:
        size = response.content_length if response is not None else None
        return seconds + self.base_cost + (size or 0) * self.byte_cost

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler
                         ) -> web.StreamResponse:
        response: web.StreamResponse | None = None
        if request.path in PRIORITY_PATHS and self._priority_token():
            started = time.perf_counter()
            try:
                response = await handler(request)
                return response
            finally:
                self._charge(self._cost(time.perf_counter() - started, response))
        if len(self._queue) >= self.max_waiting:
            self.rejected += 1
            if self.rejected == 1 or self.rejected % 1000 == 0:
                log.warning("web: %d requests waiting, %d answered 503 so far",
                            len(self._queue), self.rejected)
            return web.json_response(
                {"error": "busy: too many requests waiting, retry later"}, status=503,
                headers={"Retry-After": str(self.retry_after)})
        await self._acquire()
        started = time.perf_counter()
        try:
            response = await handler(request)
            return response
        finally:
            self._release(self._cost(time.perf_counter() - started, response))


def default_max_connections() -> int:
    """Half the file descriptors the process may open, between 100 and 1,000."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return 1000
    return max(100, min(1000, soft // 2))


class _CappedFactory:
    """aiohttp's protocol factory, closing the oldest connection when ``limit`` are open."""

    def __init__(self, server: Server, limit: int) -> None:
        self.server, self.limit = server, limit
        self.evicted = 0

    def __call__(self) -> RequestHandler:
        connections = self.server.connections  # oldest first
        open_now = [h for h in connections if h.transport is not None]
        for handler in open_now[:max(0, len(open_now) - self.limit + 1)]:
            handler.force_close()
            self.evicted += 1
        return self.server()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.server, name)


class GuardedRunner(web.AppRunner):
    """``AppRunner`` whose sites get a protocol factory with a connection cap."""

    def __init__(self, app: web.Application, *, max_connections: int, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.max_connections = max_connections
        self._capped: _CappedFactory | None = None

    @property
    def server(self) -> Server | None:
        inner = self._server
        if inner is None:
            return None
        if self._capped is None or self._capped.server is not inner:
            self._capped = _CappedFactory(inner, self.max_connections)
        return self._capped  # type: ignore[return-value]  # a callable Server stand-in


def install(faust_web: Any, gate: RequestGate, *, keepalive_timeout: float = 15.0,
            max_connections: int | None = None) -> bool:
    """Put ``gate`` and the connection limits on Faust's aiohttp web driver (before the
    worker starts it). False, with a warning, for a driver that is not aiohttp's."""
    web_app = getattr(faust_web, "web_app", None)
    if not isinstance(web_app, web.Application) or not hasattr(faust_web, "_runner"):
        log.warning("web driver %r is not aiohttp's: no request gate or connection limits",
                    type(faust_web).__name__)
        return False
    web_app.middlewares.append(gate.middleware)
    # Faust makes ``AppRunner(web_app, access_log=None)``; the same, with the limits.
    faust_web._runner = GuardedRunner(
        web_app, access_log=None, keepalive_timeout=keepalive_timeout,
        max_connections=max_connections or default_max_connections())
    return True
