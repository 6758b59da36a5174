"""The polite HTTP client (agents/ingest/fetch.py) against a local server on 127.0.0.1:
conditional GET, robots.txt, per-host spacing, redirects, size caps, encodings, timeouts,
retries and Retry-After, and the SSRF guard. No request leaves the machine."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import time
from collections.abc import Iterator
from typing import Any

import brotli
import pytest

from agents.ingest.fetch import FetchConfig, Fetcher, Response, parse_retry_after, user_agent
from tests.conftest import DATA
from tests.integration.feed_server import FeedServer

FEED = (DATA / "feeds/rss/FeedReader_Rss20Reuters.xml").read_bytes()
ROBOTS = (DATA / "feeds/robots/protego_www.nytimes.com").read_bytes()


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as srv:
        yield srv


def _fetch(config: FetchConfig, url: str, **kwargs: Any) -> Response:
    async def run() -> Response:
        async with Fetcher(config) as fetcher:
            return await fetcher.fetch(url, **kwargs)
    return asyncio.run(run())


def _config(**overrides: Any) -> FetchConfig:
    base = {"user_agent": user_agent("9.9", "https://desk.example/bot"), "allow": "127.0.0.1",
            "host_interval": 0.0, "timeout": 2.0, "backoff": 0.05, "host_concurrency": 4}
    return FetchConfig(**{**base, **overrides})


def test_conditional_get_and_user_agent(server: FeedServer) -> None:
    url = server.put("/feed.xml", FEED)

    async def run() -> tuple[Response, Response, Response]:
        async with Fetcher(_config()) as fetcher:
            first = await fetcher.fetch(url)
            second = await fetcher.fetch(url, etag=first.etag,
                                         last_modified=first.last_modified)
            other = await fetcher.fetch(url, etag='"stale"')
            return first, second, other

    first, second, other = asyncio.run(run())
    assert first.ok and first.body == FEED and first.etag and first.last_modified
    assert second.not_modified and not second.body and second.status == 304
    assert other.ok
    hits = server.hits_of("/feed.xml")
    assert [h.status for h in hits] == [200, 304, 200]
    assert hits[1].if_none_match == first.etag
    assert hits[0].user_agent == "wirewatch/9.9 (+https://desk.example/bot)"


def test_robots_txt_is_obeyed_and_cached(server: FeedServer) -> None:
    server.put("/robots.txt", ROBOTS, content_type="text/plain")
    allowed = server.put("/section/feed.xml", FEED)
    blocked = server.put("/search/feed.xml", FEED)  # nytimes: Disallow: /search

    async def run() -> list[Response]:
        async with Fetcher(_config()) as fetcher:
            return [await fetcher.fetch(u) for u in (allowed, blocked, allowed)]

    results = asyncio.run(run())
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].reason == "robots_disallowed"
    assert len(server.hits_of("/robots.txt")) == 1
    assert server.hits_of("/search/feed.xml") == []


def test_robots_txt_missing_allows_and_unreachable_disallows(server: FeedServer) -> None:
    url = server.put("/feed.xml", FEED)
    assert _fetch(_config(), url).ok  # /robots.txt is a 404
    server.put("/robots.txt", status=500)
    result = _fetch(_config(), url)
    assert result.reason == "robots_disallowed"


def test_crawl_delay_and_host_interval_space_requests(server: FeedServer) -> None:
    server.put("/robots.txt", b"User-agent: wirewatch\nCrawl-delay: 0.4\n",
               content_type="text/plain")
    url = server.put("/feed.xml", FEED)

    async def run() -> None:
        async with Fetcher(_config(host_interval=0.0)) as fetcher:
            await asyncio.gather(*(fetcher.fetch(url) for _ in range(4)))

    asyncio.run(run())
    starts = [h.at for h in server.hits_of("/feed.xml")]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(starts) == 4 and min(gaps) >= 0.35, gaps


def test_redirects_are_followed_capped_and_loops_stopped(server: FeedServer) -> None:
    server.put("/feed.xml", FEED)
    server.put("/moved", redirect="/feed.xml")
    result = _fetch(_config(), server.url("/moved"))
    assert result.ok and result.url == server.url("/feed.xml")
    server.put("/loop-a", redirect="/loop-b")
    server.put("/loop-b", redirect="/loop-a")
    loop = _fetch(_config(), server.url("/loop-a"))
    assert loop.reason == "too_many_redirects" and "loop" in loop.detail
    for n in range(8):
        server.put(f"/hop{n}", redirect=f"/hop{n + 1}")
    server.put("/hop8", FEED)
    chain = _fetch(_config(max_redirects=5), server.url("/hop0"))
    assert chain.reason == "too_many_redirects"
    assert len(server.hits_of("/hop6")) == 0


def test_gigantic_bodies_stop_at_the_cap(server: FeedServer) -> None:
    endless = server.put("/endless", endless=200 * 1024 * 1024)  # 200 MB, no Content-Length
    started = time.monotonic()
    result = _fetch(_config(), endless, max_bytes=1024 * 1024)
    assert result.reason == "too_large" and time.monotonic() - started < 5
    declared = server.put("/declared", b"x" * 300_000)
    assert _fetch(_config(), declared, max_bytes=100_000).reason == "too_large"


def test_gzip_and_brotli_bodies_are_decoded(server: FeedServer) -> None:
    gz = server.put("/gz.xml", FEED, gzip=True)
    assert _fetch(_config(), gz).body == FEED
    server.put("/br.xml", brotli.compress(FEED), headers={"Content-Encoding": "br"})
    assert _fetch(_config(), server.url("/br.xml")).body == FEED
    bomb = gzip.compress(b"\0" * 50_000_000)  # 49 KB that unpack to 50 MB
    server.put("/bomb.xml", bomb, headers={"Content-Encoding": "gzip"})
    assert _fetch(_config(), server.url("/bomb.xml"), max_bytes=1_000_000).reason == "too_large"


def test_timeouts_and_http_errors_by_reason(server: FeedServer) -> None:
    server.put("/slow", FEED, delay=1.5)
    slow = _fetch(_config(timeout=0.5, attempts=2), server.url("/slow"))
    assert slow.reason == "timeout" and slow.attempts == 2
    for status, reason in ((404, "not_found"), (410, "gone"), (403, "client_error"),
                           (500, "server_error"), (429, "rate_limited")):
        server.put(f"/s{status}", status=status)
        assert _fetch(_config(attempts=1), server.url(f"/s{status}")).reason == reason
    refused_port = _fetch(_config(attempts=1), "http://127.0.0.1:9/feed")
    assert refused_port.reason == "connection"


def test_retries_with_backoff_then_success(server: FeedServer) -> None:
    server.put("/flaky", FEED, fail_first=2)
    result = _fetch(_config(attempts=3), server.url("/flaky"))
    assert result.ok and result.attempts == 3
    assert [h.status for h in server.hits_of("/flaky")] == [503, 503, 200]


def test_retry_after_is_honoured(server: FeedServer) -> None:
    server.put("/busy", FEED, fail_first=1, retry_after="1")
    started = time.monotonic()
    result = _fetch(_config(attempts=2), server.url("/busy"))
    assert result.ok and time.monotonic() - started >= 0.95
    server.put("/later", status=503, retry_after="3600")
    long_wait = _fetch(_config(attempts=3), server.url("/later"))
    assert long_wait.reason == "server_error" and long_wait.retry_after == 3600
    assert long_wait.attempts == 1  # not waited for here: the source backs off instead


def test_ssrf_guard_refuses_private_targets_unless_allowed(server: FeedServer) -> None:
    url = server.put("/feed.xml", FEED)
    guarded = _config(allow="")
    for target in (url, f"http://localhost:{server.port}/feed.xml", "http://[::1]:9/x",
                   "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/feed"):
        result = _fetch(guarded, target)
        assert result.reason == "refused", (target, result)
        assert "WIREWATCH_INGEST_ALLOW" in result.detail
    assert server.hits == []  # nothing was asked of the server
    # Allowed by name or CIDR; a redirect to a refused address is refused on that hop.
    assert _fetch(_config(allow="127.0.0.0/8"), url).ok
    server.put("/to-metadata", redirect="http://169.254.169.254/latest/meta-data/")
    hop = _fetch(_config(allow="127.0.0.1"), server.url("/to-metadata"))
    assert hop.reason == "refused"
    server.put("/to-ftp", redirect="ftp://127.0.0.1/feed")
    assert _fetch(_config(), server.url("/to-ftp")).reason == "bad_response"


def test_parse_retry_after() -> None:
    assert parse_retry_after("120") == 120
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412420.0) == 60
    assert parse_retry_after("999999999") == 86_400
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412540.0) == 0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
