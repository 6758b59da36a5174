"""The alert rate limit, and webhook delivery against a real local HTTP server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

from agents.alert.ratelimit import RateLimiter
from agents.webhook.core import deliver, refusal_reason
from streams.records import Alert


def _alert(n: int, watch: str = "w1") -> Alert:
    return Alert(alert_id=f"a{n}", kind="opened", revision=1, watch_id=watch,
                 watch_name="Taiwan Strait", story_id=f"s{n}", article_id=f"art{n}",
                 title="t", url=None, source=None, published_at=None, sources=[f"S{n}"],
                 article_ids=[f"art{n}"], terms=["Taiwan Strait"], matches=[],
                 opened_at=0.0, updated_at=0.0, received_at=float(n))


def test_rate_limit_admits_up_to_the_limit_per_sliding_window() -> None:
    limiter = RateLimiter(window=60, default_limit=2)
    assert [limiter.admit("w1", t) for t in (0, 1, 2)] == [True, True, False]
    assert limiter.admit("w2", 2), "limits are per watch"
    assert limiter.admit("w1", 60.5), "the first alert left the window"
    assert not limiter.admit("w1", 61, limit=1) and limiter.admit("w1", 61, limit=5)


def test_held_alerts_fold_into_one_summary_a_window_later() -> None:
    limiter = RateLimiter(window=60, default_limit=1)
    for n in range(3):
        limiter.hold(_alert(n), now=10.0 + n)
    assert limiter.due_summaries(69.0) == [] and limiter.held == 3
    (summary,) = limiter.due_summaries(70.0)
    assert summary.kind == "summary" and summary.held_alerts == 3
    assert summary.story_ids == ["s0", "s1", "s2"] and summary.sources == ["S0", "S1", "S2"]
    assert limiter.held == 0 and limiter.due_summaries(200.0) == []


@pytest.mark.parametrize(("url", "allow", "refused"), [
    ("http://127.0.0.1:8080/hook", "", True),
    ("http://localhost/hook", "", True),
    ("http://10.1.2.3/hook", "", True),
    ("http://169.254.169.254/latest/meta-data", "", True),
    ("http://[::1]/hook", "", True),
    ("ftp://example.org/x", "", True),
    ("http://127.0.0.1:8080/hook", "127.0.0.0/8", False),
    ("http://localhost:9/hook", "localhost", False),
    ("http://93.184.215.14/hook", "", False),
])
def test_webhook_targets_are_guarded(url: str, allow: str, refused: bool) -> None:
    reason = asyncio.run(refusal_reason(url, allow))
    assert (reason is not None) == refused, reason


@pytest.mark.parametrize("address", [
    "100.64.0.1", "100.127.255.254",  # carrier-grade NAT (shared address space)
    "0.0.0.0", "127.0.0.2", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.1.1",
    "192.0.0.1", "192.0.2.1", "198.18.0.1", "198.51.100.1", "203.0.113.1",  # special, test
    "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",  # multicast, reserved
    "[::]", "[::1]", "[fc00::1]", "[fe80::1]", "[fec0::1]", "[ff02::1]", "[2001:db8::1]",
    "[::ffff:127.0.0.1]", "[::ffff:100.64.0.1]",  # IPv4-mapped
    "[64:ff9b::a00:1]", "[64:ff9b::6440:1]",  # NAT64 of 10.0.0.1 and 100.64.0.1
    "[2002:a00:1::]", "[2002:6440:1::]",  # 6to4 of 10.0.0.1 and 100.64.0.1
])
def test_webhook_guard_refuses_every_address_that_is_not_global(address: str) -> None:
    # Literal addresses: no DNS is asked.
    reason = asyncio.run(refusal_reason(f"http://{address}/hook", ""))
    assert reason is not None and "WIREWATCH_WEBHOOK_ALLOW" in reason, reason


@pytest.mark.parametrize(("url", "allow"), [
    ("http://100.64.0.1/hook", "100.64.0.0/10"),
    ("http://100.64.0.1/hook", "100.64.0.1"),
    ("http://[fc00::1]:8080/hook", "fc00::/7"),
    ("http://[2001:db8::1]/hook", "2001:db8::1"),
])
def test_webhook_allow_names_a_cidr_or_host_holding_the_address(url: str, allow: str) -> None:
    assert asyncio.run(refusal_reason(url, allow)) is None


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "[2606:4700:4700::1111]"])
def test_webhook_guard_lets_global_addresses_through(address: str) -> None:
    assert asyncio.run(refusal_reason(f"https://{address}/hook", "")) is None


@pytest.mark.parametrize("url", [
    "http://host:99999/", "http://host:abc/", "http://[::1/", f"http://{'a' * 64}.com/",
    f"http://{'a' * 10_000}.com/", "http://[notanip]/", "http:///x", "",
])
def test_webhook_guard_gives_a_reason_for_a_malformed_url_and_never_raises(url: str) -> None:
    reason = asyncio.run(refusal_reason(url, ""))
    assert reason, url[:60]
    assert len(reason) < 400


Handler = Callable[[web.Request], Awaitable[web.Response]]


async def _with_server(handler: Handler, attempts: int) -> tuple[bool, int, str, int]:
    calls = 0

    async def counting(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        return await handler(request)

    server = web.Application()
    server.router.add_post("/hook", counting)
    runner = web.AppRunner(server)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession() as session:
            result = await deliver(session, f"http://127.0.0.1:{port}/hook", b'{"a": 1}',
                                   timeout=2, attempts=attempts, backoff=0.01)
    finally:
        await runner.cleanup()
    return result.ok, result.attempts, result.detail, calls


def test_webhook_retries_transient_failures_then_succeeds() -> None:
    answers = iter([503, 429, 200])

    async def flaky(request: web.Request) -> web.Response:
        assert await request.json() == {"a": 1}
        return web.Response(status=next(answers))

    assert asyncio.run(_with_server(flaky, attempts=4)) == (True, 3, "HTTP 200", 3)


def test_webhook_gives_up_after_its_attempts_and_never_retries_a_4xx() -> None:
    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=500)

    async def gone(request: web.Request) -> web.Response:
        return web.Response(status=410)

    assert asyncio.run(_with_server(broken, attempts=3)) == (False, 3, "HTTP 500", 3)
    assert asyncio.run(_with_server(gone, attempts=3)) == (False, 1, "HTTP 410", 1)
