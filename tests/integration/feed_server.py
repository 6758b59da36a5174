"""A local web server for ingest tests: real sockets on 127.0.0.1, aiohttp.web in a thread.

Each path serves a ``Route``: a body (files are read from ../shared/data/feeds in place by
the tests), with ETag / Last-Modified and 304s, or a behaviour: an HTTP status (with
Retry-After), a delay (slow responses, timeouts), a redirect (chains and loops), a body
streamed without end (a gigantic response), a gzip-encoded body, failing N times first.
Every request is logged (path, status, the headers that matter) for assertions. Routes can
be changed while it runs.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import re
import threading
import time
from dataclasses import dataclass, field

from aiohttp import web

__all__ = ["FeedServer", "Hit", "Route", "localize"]

# Links as feeds and sitemaps write them: <link>, <guid>, <loc>, Atom href, JSON Feed "url".
_LINKS = re.compile(
    rb"""((?:<link>|<guid[^>]*>|<loc>|<id>)\s*(?:<!\[CDATA\[)?\s*|<link\b[^>]*?\bhref=["']"""
    rb"""|"(?:url|external_url)"\s*:\s*")https?://([A-Za-z0-9.-]+)""")


def localize(document: bytes, base: str) -> bytes:
    """``document`` with its item links moved onto this server: ``https://host/path`` becomes
    ``{base}/ext/host/path`` (namespace URIs are untouched), so fetching the articles stays
    on 127.0.0.1."""
    if document.lstrip()[:1] == b"{":
        document = document.replace(b"\\/", b"/")  # JSON's optional escape of "/"
    return _LINKS.sub(lambda m: m.group(1) + base.encode() + b"/ext/" + m.group(2), document)


@dataclass
class Route:
    body: bytes = b""
    content_type: str = "application/xml"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering
    redirect: str | None = None  # a path or URL: 302 there
    validators: bool = True  # ETag + Last-Modified, and 304 on a match
    endless: int = 0  # stream this many bytes (no Content-Length), ignoring body
    gzip: bool = False  # Content-Encoding: gzip
    fail_first: int = 0  # answer 503 this many times first
    retry_after: str | None = None


@dataclass
class Hit:
    path: str
    status: int
    user_agent: str
    if_none_match: str | None
    if_modified_since: str | None
    at: float


class FeedServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.prefixes: dict[str, list[Route]] = {}
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # ------------------------------------------------------------------ control

    def put(self, path: str, body: bytes = b"", **options: object) -> str:
        with self._lock:
            self.routes[path] = Route(body=body, **options)  # type: ignore[arg-type]
        return self.url(path)

    def put_prefix(self, prefix: str, bodies: list[bytes], **options: object) -> None:
        """Every path under ``prefix`` without a route of its own: one of ``bodies``, the
        same one for the same path (e.g. real article pages behind a feed's links)."""
        with self._lock:
            self.prefixes[prefix] = [Route(body=b, **options)  # type: ignore[arg-type]
                                     for b in bodies]

    def _route(self, path: str) -> Route | None:
        route = self.routes.get(path)
        if route is not None:
            return route
        for prefix, routes in sorted(self.prefixes.items(), key=lambda kv: -len(kv[0])):
            if path.startswith(prefix) and routes:
                digest = int(hashlib.sha1(path.encode()).hexdigest(), 16)
                return routes[digest % len(routes)]
        return None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def hits_of(self, path: str) -> list[Hit]:
        with self._lock:
            return [h for h in self.hits if h.path == path]

    def start(self) -> FeedServer:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_route("GET", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="feed-server", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("feed server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ serving

    def _log(self, request: web.Request, status: int) -> None:
        with self._lock:
            self.hits.append(Hit(request.path, status, request.headers.get("User-Agent", ""),
                                 request.headers.get("If-None-Match"),
                                 request.headers.get("If-Modified-Since"), time.time()))

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            route = self._route(request.path)
            if route is not None and route.fail_first > 0:
                route.fail_first -= 1
                failing = True
            else:
                failing = False
        if route is None:
            self._log(request, 404)
            return web.Response(status=404, text="not here")
        if route.delay:
            await asyncio.sleep(route.delay)
        if failing:
            self._log(request, 503)
            headers = {"Retry-After": route.retry_after} if route.retry_after else {}
            return web.Response(status=503, text="busy", headers=headers)
        if route.redirect is not None:
            self._log(request, 302)
            return web.Response(status=302, headers={"Location": route.redirect})
        if route.status != 200:
            self._log(request, route.status)
            headers = dict(route.headers)
            if route.retry_after:
                headers["Retry-After"] = route.retry_after
            return web.Response(status=route.status, text="no", headers=headers)
        if route.endless:
            self._log(request, 200)
            response = web.StreamResponse(headers={"Content-Type": route.content_type})
            await response.prepare(request)
            chunk = b"<item>" + b"x" * 65_530
            sent = 0
            try:
                while sent < route.endless:
                    await response.write(chunk)
                    sent += len(chunk)
            except (ConnectionError, RuntimeError):
                pass  # the client stopped reading: that is the point
            return response
        etag = '"' + hashlib.sha1(route.body).hexdigest()[:16] + '"'
        modified = "Mon, 01 Jan 2024 00:00:00 GMT"
        headers = {"Content-Type": route.content_type, **route.headers}
        if route.validators:
            headers["ETag"] = etag
            headers["Last-Modified"] = modified
            if request.headers.get("If-None-Match") == etag:
                self._log(request, 304)
                return web.Response(status=304, headers={"ETag": etag})
        body = route.body
        if route.gzip:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        self._log(request, 200)
        return web.Response(body=body, headers=headers)
