"""One source's poll (agents/ingest/poll.py) and the manager of many (runner.py), with the
real documents served from 127.0.0.1 and an in-memory sink in place of Kafka."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from agents.clean.core import clean
from agents.ingest.feeds import Item
from agents.ingest.fetch import FetchConfig, Fetcher
from agents.ingest.poll import IngestConfig, Poller, PollReport, build_message, decode_page
from agents.ingest.runner import IngestManager
from agents.ingest.sources import Source
from agents.ingest.state import SourceState
from agents.ingest.store import Loaded
from tests.conftest import DATA
from tests.integration.feed_server import FeedServer, localize

FEEDS = DATA / "feeds"
PAGES = [(FEEDS / "pages" / f"newspaper4k_{name}.html").read_bytes()
         for name in ("cnn_article", "cleveland.com1", "yna_co_kr", "time_001")]


class MemorySink:
    def __init__(self) -> None:
        self.published: list[tuple[bytes, bytes]] = []
        self.saved: dict[bytes, bytes | None] = {}
        self.owned = True
        self.on_publish: Any = None

    def owns(self, partition: int) -> bool:
        return self.owned

    async def publish(self, messages: list[tuple[bytes, bytes]]) -> None:
        self.published.extend(messages)
        if self.on_publish:
            self.on_publish()

    async def save(self, partition: int, key: bytes, value: bytes | None) -> None:
        self.saved[key] = value

    def records(self) -> list[dict[str, Any]]:
        return [orjson.loads(v) for _, v in self.published]


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as srv:
        srv.put_prefix("/ext/", PAGES, content_type="text/html; charset=utf-8")
        yield srv


def _poller(**config: Any) -> tuple[Poller, Fetcher]:
    fetcher = Fetcher(FetchConfig(allow="127.0.0.1", host_interval=0.0, timeout=2.0,
                                  backoff=0.01, attempts=1, host_concurrency=8))
    return Poller(fetcher, IngestConfig(**{"interval": 60.0, **config})), fetcher


def _run(poller: Poller, fetcher: Fetcher, source: Source, state: SourceState,
         sink: MemorySink, rounds: int = 1) -> list[PollReport]:
    async def run() -> list[PollReport]:
        try:
            return [await poller.poll(source, state, 0, sink) for _ in range(rounds)]
        finally:
            await fetcher.close()
    return asyncio.run(run())


def _feed(server: FeedServer, path: str, file: str, **options: Any) -> Source:
    body = localize((FEEDS / file).read_bytes(), server.url(""))
    return Source(server.put(path, body, content_type="application/rss+xml"), **options)


def test_new_items_go_out_once_with_their_pages(server: FeedServer) -> None:
    source = _feed(server, "/reuters.xml", "rss/FeedReader_Rss20Reuters.xml", name="Reuters")
    state, sink = SourceState(source.url), MemorySink()
    first, second = _run(*_poller(), source, state, sink, rounds=2)
    assert (first.outcome, first.new, first.published) == ("changed", 10, 10)
    assert second.outcome == "not_modified" and len(sink.published) == 10
    records = sink.records()
    assert [k.decode() for k, _ in sink.published] == [r["id"] for r in records]
    for record in records:
        assert record["source"] == "Reuters" and record["feed"] == source.url
        assert record["url"].startswith(server.url("/ext/feeds.reuters.com/"))
        assert record["html"].lstrip().lower().startswith(("<!doctype", "<html"))
        assert record["published_at"] and record["title"] and record["language"] == "en"
    # Oldest first: the feed lists the newest first.
    dates = [r["published_at"] for r in records]
    assert dates == sorted(dates)
    # What clean makes of one: the page's body, the feed's title and date.
    article = clean(sink.published[0][1])
    assert article.id == records[0]["id"] and len(article.text) > 500
    assert article.title == records[0]["title"]
    assert orjson.loads(sink.saved[source.url.encode()] or b"{}")["etag"]


def test_a_changed_feed_publishes_only_what_is_new(server: FeedServer) -> None:
    body = localize((FEEDS / "rss/FeedReader_Rss20Reuters.xml").read_bytes(), server.url(""))
    url = server.put("/feed.xml", body)
    source, state, sink = Source(url, pages="never"), SourceState(url), MemorySink()
    poller, fetcher = _poller()

    async def run() -> list[PollReport]:
        reports = [await poller.poll(source, state, 0, sink)]
        extra = (b"<item><title>Fresh</title><link>" + server.url("/ext/fresh/1").encode()
                 + b"</link><description>A new item.</description></item>")
        server.put("/feed.xml", body.replace(b"<item>", extra + b"<item>", 1))
        reports.append(await poller.poll(source, state, 0, sink))
        await fetcher.close()
        return reports

    first, second = asyncio.run(run())
    assert (first.new, second.new, len(sink.published)) == (10, 1, 11)
    assert sink.records()[-1]["title"] == "Fresh"
    assert all("text" in r or "html" in r for r in sink.records())


def test_pages_that_fail_fall_back_or_wait(server: FeedServer) -> None:
    source = _feed(server, "/feed.xml", "rss/FeedReader_Rss20Reuters.xml")
    server.put_prefix("/ext/", [b""], status=404)
    state, sink = SourceState(source.url), MemorySink()
    report, = _run(*_poller(), source, state, sink)
    assert (report.summary_only, report.published) == (10, 0)  # the feed's summary instead
    assert all("html" in r or "text" in r for r in sink.records())
    # A transient failure waits for the next poll, up to page_attempts, then falls back.
    server.put_prefix("/ext/", [b""], status=503)
    source2 = _feed(server, "/feed2.xml", "rss/FeedReader_Rss20MoscowTimes.xml")
    state2, sink2 = SourceState(source2.url), MemorySink()
    reports = _run(*_poller(page_attempts=3), source2, state2, sink2, rounds=3)
    assert [r.retry for r in reports] == [50, 50, 0]
    assert reports[2].summary_only == 50 and len(sink2.published) == 50
    assert state2.etag is not None  # a complete round keeps the validators again


def test_sitemap_items_need_their_page(server: FeedServer) -> None:
    body = localize((FEEDS / "sitemaps/advertools_news_sitemap.xml").read_bytes(),
                    server.url(""))
    url = server.put("/news-sitemap.xml", body)
    state, sink = SourceState(url), MemorySink()
    report, = _run(*_poller(), Source(url, max_age=0), state, sink)
    assert report.published == 6
    record = next(r for r in sink.records() if r["url"].endswith("/quarantine-insanity.html"))
    assert record["source"] == "The New York Times" and record["language"] == "en"
    assert record["html"] and record["published_at"] == "2020-05-11T09:00:01Z"
    server.put_prefix("/ext/", [b""], status=410)
    state2, sink2 = SourceState(url), MemorySink()
    report2, = _run(*_poller(), Source(url, max_age=0), state2, sink2)
    assert report2.dropped == 6 and sink2.published == [] and len(state2.seen) == 6
    # The default max_age for sitemaps (48 h) skips these 2020 items.
    state3, sink3 = SourceState(url), MemorySink()
    report3, = _run(*_poller(), Source(url), state3, sink3)
    assert report3.new == 0 and sink3.published == []


def test_sitemap_index_children_and_their_validators(server: FeedServer) -> None:
    child = localize((FEEDS / "sitemaps/crawler-commons_sitemap-news.xml").read_bytes(),
                     server.url(""))
    server.put("/child-1.xml", child)
    server.put("/child-2.xml", status=500)
    index = (b'<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/'
             b'sitemap/0.9"><sitemap><loc>/child-1.xml</loc></sitemap>'
             b'<sitemap><loc>/child-2.xml</loc></sitemap></sitemapindex>')
    url = server.put("/index.xml", index)
    state, sink = SourceState(url), MemorySink()
    first, second = _run(*_poller(), Source(url, max_age=0), state, sink, rounds=2)
    assert first.published == 2 and first.outcome == "changed"
    assert second.outcome == "not_modified" and len(sink.published) == 2
    # The index did not change, and neither did its children (asked with their ETags);
    # the failing child is asked again each time.
    assert [h.status for h in server.hits_of("/index.xml")] == [200, 304]
    assert [h.status for h in server.hits_of("/child-1.xml")] == [200, 304]
    assert [h.status for h in server.hits_of("/child-2.xml")] == [500, 500]
    # A child that changes under an unchanged index is read.
    server.put("/child-2.xml", localize((FEEDS / "sitemaps/crawler-commons_shinpaideshou-"
                                         "news-sitemap.xml").read_bytes(), server.url("")))
    third, = _run(*_poller(), Source(url, max_age=0), state, sink)
    assert third.published == 3 and len(sink.published) == 5


def test_the_round_cap_leaves_the_rest_for_the_next_round(server: FeedServer) -> None:
    source = _feed(server, "/feed.xml", "rss/FeedReader_Rss20MoscowTimes.xml", pages="never")
    state, sink = SourceState(source.url), MemorySink()
    reports = _run(*_poller(max_new_per_poll=20), source, state, sink, rounds=4)
    assert [(r.outcome, r.new, r.left) for r in reports] == [
        ("changed", 50, 30), ("changed", 30, 10), ("changed", 10, 0), ("not_modified", 0, 0)]
    assert len(sink.published) == len({k for k, _ in sink.published}) == 50
    first_round = sink.records()[:20]
    assert min(r["published_at"] for r in first_round) >= \
        max(r["published_at"] for r in sink.records()[20:40])  # the newest went first


def test_a_poll_stops_when_its_partition_moves(server: FeedServer) -> None:
    source = _feed(server, "/feed.xml", "rss/FeedReader_Rss20MoscowTimes.xml", pages="never")
    state, sink = SourceState(source.url), MemorySink()

    def lose_it() -> None:
        sink.owned = False

    sink.on_publish = lose_it
    report, = _run(*_poller(), source, state, sink)
    assert report.outcome == "aborted" and len(sink.published) == 16  # one batch
    assert len(state.seen) == 16 and orjson.loads(sink.saved[source.url.encode()] or b"")["seen"]


def test_failures_back_off_and_log_once_per_change(server: FeedServer,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    url = server.put("/feed.xml", status=500)
    source, state, sink = Source(url, name="Broken"), SourceState(url), MemorySink()
    poller, fetcher = _poller(max_backoff=3600.0)
    caplog.set_level(logging.INFO, logger="wirewatch.ingest")

    async def run() -> None:
        for _ in range(4):
            await poller.poll(source, state, 0, sink, now=1000.0)
        server.put("/feed.xml", (FEEDS / "rss/FeedReader_Rss20Reuters.xml").read_bytes())
        await poller.poll(Source(url, name="Broken", pages="never"), state, 0, sink, now=2000.0)
        await fetcher.close()

    asyncio.run(run())
    messages = [r.getMessage() for r in caplog.records]
    assert sum("failing: server_error" in m for m in messages) == 1, messages
    assert sum("recovered after 4 failure(s)" in m for m in messages) == 1, messages
    assert state.failures == 0 and state.last_success == 2000.0


def test_decode_page_and_oversized_pages() -> None:
    cp1252 = "<html><body><p>Caf\u00e9 \u201cquoted\u201d</p></body></html>".encode("cp1252")
    assert "Café “quoted”" in decode_page(cp1252, "text/html; charset=windows-1252")
    meta = b'<html><head><meta charset="windows-1251"></head><body><p>' + \
        "Привет, мир — это тест страницы в кодировке".encode("cp1251") * 20 + b"</p></body></html>"
    assert "Привет" in decode_page(meta, "text/html")
    source = Source("https://a.example/feed")
    item = Item(id="x1", link="https://a.example/1", title="T", summary="<p>Short.</p>")
    page = "<html><body>" + "<script>var x=1;</script>" * 50_000 + "<p>" + "word " * 300 + \
        "</p></body></html>"
    outcome, value = build_message(source, item, page, max_bytes=1_048_576,
                                   full_content_chars=2000)
    assert outcome == "published" and value is not None and b"<script>" not in value
    outcome, value = build_message(source, item, "<p>" + "x" * 2_000_000, max_bytes=1_048_576,
                                   full_content_chars=2000)
    assert outcome == "summary_only" and value is not None and b"Short." in value
    bare = Item(id="x2", link="https://a.example/2")
    assert build_message(source, bare, None, max_bytes=1000, full_content_chars=2000) == \
        ("dropped", None)


# --------------------------------------------------------------------------- the manager


class _Publisher:
    def __init__(self) -> None:
        self.sink = MemorySink()

    async def publish(self, messages: list[tuple[bytes, bytes]]) -> None:
        await self.sink.publish(messages)

    async def save(self, partition: int, key: bytes, value: bytes | None) -> None:
        await self.sink.save(partition, key, value)


def test_manager_owns_polls_and_applies_only_newer_records(server: FeedServer) -> None:
    url = _feed(server, "/a.xml", "rss/FeedReader_Rss20Reuters.xml", pages="never").url
    other = _feed(server, "/b.xml", "rss/RSParser_livemint.xml", pages="never").url
    loads: list[set[int]] = []

    async def loader(partitions: set[int]) -> Loaded:
        loads.append(set(partitions))
        return Loaded(sources={url: (0, Source(url, pages="never")),
                               other: (1, Source(other, pages="never"))},
                      next_offsets={0: 5, 1: 3})

    async def run() -> tuple[list[str], int, int]:
        poller, fetcher = _poller()
        publisher = _Publisher()
        manager = IngestManager(poller, publisher, loader, revoke_timeout=2.0)
        await manager.assign({0})
        task = asyncio.ensure_future(manager.run(tick=0.05))
        for _ in range(100):
            await asyncio.sleep(0.05)
            if manager.states[url].last_success:
                break
        polled = sorted(manager.states)
        # An old record (offset 4 < 5) is skipped; a new one (offset 5) applies.
        await manager.apply_record(0, 4, url.encode(), None)
        assert url in manager.sources
        await manager.apply_record(0, 5, url.encode(), None)
        assert url not in manager.sources
        # A rebalance: partition 0 goes, 1 comes (read from the topics); 0 is forgotten.
        await manager.revoke({0})
        await manager.assign({1})
        for _ in range(100):
            await asyncio.sleep(0.05)
            if other in manager.states and manager.states[other].last_success:
                break
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await fetcher.close()
        return polled, len(publisher.sink.published), len(manager.sources)

    polled, published, remaining = asyncio.run(run())
    assert polled == [url]  # partition 1 was not ours at first
    assert loads == [{0}, {1}]
    assert published == 10 + 25 and remaining == 1
