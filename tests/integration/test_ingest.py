"""Ingest through the whole pipeline: real workers on the embedded Kafka broker follow real
feeds and sitemaps (../shared/data/feeds, read in place) served from 127.0.0.1, with bad
sources beside the good ones; what lands on news.raw and what clean makes of it.

- the pipeline: every item once on news.raw (with its page where the feed has no full
  text), the bad sources counted by reason and reported, conditional GETs, the article
  pages extracted by the clean stage close to their expected text;
- a restart: stop the worker, add an item while it is down, restart: only that item;
- two workers: the sources split between them, every item published once;
- ``wirewatch ingest --once`` and ``--status`` from the CLI, without a worker.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from agents.ingest.feeds import parse_document
from tests.conftest import DATA
from tests.integration.feed_server import FeedServer, localize
from tests.integration.harness import Pipeline

FEEDS = DATA / "feeds"
PAGE_NAMES = ["cnn_article", "cleveland.com1", "fox13now_001", "spanish_article", "time_001",
              "yna_co_kr"]
PAGES = [(FEEDS / "pages" / f"newspaper4k_{n}.html").read_bytes() for n in PAGE_NAMES]
EXPECTED_TEXT = [(FEEDS / "pages" / f"newspaper4k_{n}.txt").read_text(encoding="utf-8")
                 for n in PAGE_NAMES]
GOOD = {  # path: (file, items)
    "/reuters.xml": ("rss/FeedReader_Rss20Reuters.xml", 10),
    "/tpm.atom": ("atom/node-feedparser_tpm.atom", 20),
    "/npr.json": ("jsonfeed/trafilatura_feed.json", 25),
    "/news-sitemap.xml": ("sitemaps/advertools_news_sitemap.xml", 6),
    "/child-sitemap.xml": ("sitemaps/crawler-commons_sitemap-news.xml", 2),
}
ITEMS = sum(n for _, n in GOOD.values())  # 63, the index's child counted once
BAD = {  # path: the reason it fails for
    "/gone.xml": "gone", "/missing.xml": "not_found", "/broken.xml": "server_error",
    "/busy.xml": "server_error", "/slow.xml": "timeout", "/loop.xml": "too_many_redirects",
    "/huge.xml": "too_large", "/page.xml": "not_a_feed", "/truncated.xml": "malformed",
    "/portal/feed.xml": "robots_disallowed",
}
INGEST_ENV = {
    "WIREWATCH_INGEST_ALLOW": "127.0.0.1",
    "WIREWATCH_INGEST_HOST_INTERVAL_SECONDS": "0.01",
    "WIREWATCH_INGEST_HOST_CONCURRENCY": "8",
    "WIREWATCH_INGEST_TIMEOUT_SECONDS": "2",
    "WIREWATCH_INGEST_ATTEMPTS": "2",
    "WIREWATCH_INGEST_MIN_INTERVAL_SECONDS": "1",
    "WIREWATCH_INGEST_MAX_FEED_BYTES": "2000000",
    "WIREWATCH_INGEST_CONTACT": "https://desk.example/wirewatch",
}


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    with FeedServer() as server:
        base = server.url("")
        server.put("/robots.txt", (FEEDS / "robots/protego_www.aljazeera.com").read_bytes(),
                   content_type="text/plain")
        for path, (name, _) in GOOD.items():
            server.put(path, localize((FEEDS / name).read_bytes(), base),
                       content_type="application/json" if path.endswith(".json")
                       else "application/xml")
        server.put("/sitemap-index.xml", (
            '<?xml version="1.0" encoding="UTF-8"?><sitemapindex xmlns="http://www.sitemaps.org/'
            f'schemas/sitemap/0.9"><sitemap><loc>{base}/child-sitemap.xml</loc></sitemap>'
            "</sitemapindex>").encode())
        # Article pages: under /ext/ (the absolute links, moved here) and wherever TPM's
        # relative Atom links resolve to on this server.
        server.put_prefix("/", PAGES, content_type="text/html; charset=utf-8")
        server.put("/missing.xml", status=404)
        server.put("/gone.xml", status=410)
        server.put("/broken.xml", status=500)
        server.put("/busy.xml", status=503, retry_after="120")
        server.put("/slow.xml", b"<rss/>", delay=5)
        server.put("/loop.xml", redirect="/loop2.xml")
        server.put("/loop2.xml", redirect="/loop.xml")
        server.put("/huge.xml", endless=50_000_000)
        server.put("/page.xml", (FEEDS / "edge/rss-parser_unrecognized.rss").read_bytes(),
                   content_type="text/html")
        server.put("/truncated.xml", (FEEDS / "edge/feed-rs_rss_2.0_invalid_1.xml").read_bytes())
        server.put("/portal/feed.xml", (FEEDS / "rss/FeedReader_Rss20Reuters.xml").read_bytes())
        yield server


def _sources_file(tmp: Path, server: FeedServer, *, interval: int = 2) -> Path:
    lines = ["# test sources: five good, ten bad"]
    for path in [*GOOD, "/sitemap-index.xml"]:
        if path == "/child-sitemap.xml":
            continue  # reached through the index
        lines.append(f'{server.url(path)} interval={interval} max_age=0 source="Feed {path[1:]}"')
    lines += [f"{server.url(path)} interval={interval}" for path in BAD]
    path = tmp / "sources.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def _raw(pipeline: Pipeline) -> list[tuple[bytes | None, dict[str, Any]]]:
    return [(k, orjson.loads(v)) for k, v in pipeline.records("raw") if v is not None]


def _wait_raw(pipeline: Pipeline, count: int, timeout: float = 120.0
              ) -> list[tuple[bytes | None, dict[str, Any]]]:
    deadline = time.monotonic() + timeout
    records: list[tuple[bytes | None, dict[str, Any]]] = []
    while time.monotonic() < deadline:
        records = _raw(pipeline)
        if len(records) >= count:
            return records
        time.sleep(0.5)
    raise AssertionError(f"{len(records)} of {count} items on news.raw\n{pipeline.diagnosis()}")


def _status(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/ingest/", timeout=5) as resp:
        return dict(json.loads(resp.read()))


def _wait_polls(pipeline: Pipeline, port: int, outcome: str, at_least: float,
                timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pipeline.metric("wirewatch_ingest_polls_total", {"outcome": outcome},
                           port=port) >= at_least:
            return
        time.sleep(0.5)
    raise AssertionError(f"fewer than {at_least} {outcome} polls\n{pipeline.diagnosis()}")


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def _f1(got: str, want: str) -> float:
    a, b = _words(got), _words(want)
    if not a or not b:
        return 0.0
    common = len(a & b)
    return 2 * common / (len(a) + len(b))


def _check_unique(records: list[tuple[bytes | None, dict[str, Any]]]) -> None:
    keys = [k for k, _ in records]
    assert len(keys) == len(set(keys)), "an item was published twice"
    assert all(k is not None and k.decode() == r["id"] for k, r in records)


def test_feeds_and_sitemaps_reach_news_raw_once_and_clean_extracts_their_pages(
        pipeline: Pipeline, feeds: FeedServer, tmp_path: Path) -> None:
    sources = _sources_file(tmp_path, feeds)
    port = pipeline.start_worker(WIREWATCH_INGEST_SOURCES_FILE=str(sources), **INGEST_ENV)
    records = _wait_raw(pipeline, ITEMS)
    _check_unique(records)
    by_feed: dict[str, int] = {}
    for _key, record in records:
        by_feed[record["feed"]] = by_feed.get(record["feed"], 0) + 1
        assert record["url"].startswith(feeds.url("/")) and record["title"]
        assert ("html" in record) != ("text" in record)
    # The index's child sitemap counts under the index, the source that led to it.
    assert by_feed == {**{feeds.url(p): n for p, (_, n) in GOOD.items()
                          if p != "/child-sitemap.xml"},
                       feeds.url("/sitemap-index.xml"): GOOD["/child-sitemap.xml"][1]}
    # An item whose feed carries its full text (TPM's longer items) goes out with it; every
    # other one came with its page.
    full = sum(1 for item in parse_document((FEEDS / GOOD["/tpm.atom"][0]).read_bytes(),
                                            feeds.url("/tpm.atom")).items
               if item.content and len(" ".join(re.sub("<[^>]*>", " ", item.content).split()))
               >= 2000)
    assert 0 < full < GOOD["/tpm.atom"][1]
    with_page = [r for _, r in records if "<html" in r.get("html", "")[:3000].lower()]
    assert len(with_page) == ITEMS - full

    # Polls go on (every 2 s): conditional GETs, nothing published again.
    _wait_polls(pipeline, port, "not_modified", 10)
    reuters = feeds.hits_of("/reuters.xml")
    assert reuters[0].status == 200 and {h.status for h in reuters[1:]} == {304}
    assert reuters[1].if_none_match
    assert reuters[0].user_agent.startswith("wirewatch/") and "desk.example" in reuters[0].user_agent
    assert len(_raw(pipeline)) == ITEMS

    # Bad sources: counted by reason, backing off, on the status page; the rest went on.
    # Waited for: a slow source fails only after its timeouts and retries, later than the rest
    # on a busy machine (CI once read 0 for "timeout" here).
    for reason in sorted(set(BAD.values())):
        pipeline.wait_metric("wirewatch_ingest_fetch_errors_total",
                             {"kind": "feed", "reason": reason}, 1, timeout=60)
    status = _status(port)
    health = {row["url"]: row for row in status["sources"]}
    for path, reason in BAD.items():
        row = health[feeds.url(path)]
        assert row["health"] == "backing_off" and row["reason"] == reason, row
    assert all(health[feeds.url(p)]["health"] == "ok" for p in GOOD if p != "/child-sitemap.xml")
    assert status["health"]["backing_off"] == len(BAD)
    assert len(feeds.hits_of("/busy.xml")) == 1  # Retry-After: 120 holds the next poll
    assert feeds.hits_of("/portal/feed.xml") == []  # robots.txt: never asked
    pipeline.wait_metric("wirewatch_ingest_sources", {"state": "backing_off"}, len(BAD))
    # Four feeds and the index (which stands for its child sitemap).
    assert pipeline.metric("wirewatch_ingest_sources", {"state": "ok"}, port=port) == len(GOOD)

    # The clean stage reads the pages as it reads any page.
    clean = pipeline.wait_for("clean", lambda r: r if len(r) >= ITEMS else None, timeout=60)
    assert {a["id"] for a in clean} == {r["id"] for _, r in records}
    scores = []
    for article in clean:
        path = article["url"].split(f"127.0.0.1:{feeds.port}", 1)[-1] if article["url"] else ""
        route = feeds._route(path.split("?")[0]) if path else None
        record = next(r for _, r in records if r["id"] == article["id"])
        if route is None or route.body not in PAGES or record not in with_page:
            continue  # the feed's own full text, not a page
        scores.append(_f1(article["text"], EXPECTED_TEXT[PAGES.index(route.body)]))
    assert len(scores) >= 20 and min(scores) > 0.8, scores
    print(f"\ningest -> clean: {len(scores)} pages, word F1 min {min(scores):.3f} "
          f"mean {sum(scores) / len(scores):.3f}")


def test_a_restart_publishes_nothing_again_and_misses_nothing(
        pipeline: Pipeline, feeds: FeedServer, tmp_path: Path) -> None:
    sources = _sources_file(tmp_path, feeds)
    env = {"WIREWATCH_INGEST_SOURCES_FILE": str(sources), **INGEST_ENV}
    pipeline.start_worker(**env)
    _check_unique(_wait_raw(pipeline, ITEMS))
    pipeline.stop_workers()
    # While it is down, Reuters publishes one more item.
    body = localize((FEEDS / "rss/FeedReader_Rss20Reuters.xml").read_bytes(), feeds.url(""))
    fresh = (b"<item><title>Published while ingest was down</title><link>"
             + feeds.url("/ext/while-down/article.html").encode()
             + b"</link><pubDate>Sat, 07 Jan 2017 12:00:00 GMT</pubDate>"
               b"<description>A new item.</description></item>")
    feeds.put("/reuters.xml", body.replace(b"<item>", fresh + b"<item>", 1))
    hits_before = len(feeds.hits_of("/reuters.xml"))
    port = pipeline.start_worker(**env)
    records = _wait_raw(pipeline, ITEMS + 1)
    _check_unique(records)
    assert records[-1][1]["title"] == "Published while ingest was down"
    _wait_polls(pipeline, port, "not_modified", 10)
    assert len(_raw(pipeline)) == ITEMS + 1
    # The restarted worker went on with the saved ETags: its first poll of an unchanged
    # feed was a 304.
    tpm = feeds.hits_of("/tpm.atom")
    assert tpm[0].status == 200 and all(h.status == 304 for h in tpm[1:])
    assert len(feeds.hits_of("/reuters.xml")) > hits_before


def test_two_workers_split_the_sources_and_publish_each_item_once(
        pipeline: Pipeline, feeds: FeedServer, tmp_path: Path) -> None:
    sources = _sources_file(tmp_path, feeds)
    env = {"WIREWATCH_INGEST_SOURCES_FILE": str(sources), **INGEST_ENV}
    first = pipeline.start_worker(**env)
    second = pipeline.start_worker(**env)
    records = _wait_raw(pipeline, ITEMS)
    _wait_polls(pipeline, first, "not_modified", 3)
    _wait_polls(pipeline, second, "not_modified", 3)
    time.sleep(3)  # a few more rounds on both
    records = _raw(pipeline)
    _check_unique(records)
    assert len(records) == ITEMS
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the rebalance settles: each holds two partitions
        one, two = _status(first), _status(second)
        if len(one["partitions"]) == 2 and len(two["partitions"]) == 2:
            break
        time.sleep(1)
    mine = {row["url"] for row in one["sources"]}
    theirs = {row["url"] for row in two["sources"]}
    assert not set(one["partitions"]) & set(two["partitions"])
    assert mine and theirs and not mine & theirs
    assert len(mine | theirs) == len(GOOD) + len(BAD)  # index in, its child not a source


def test_ingest_once_and_status_from_the_cli(pipeline: Pipeline, feeds: FeedServer,
                                             tmp_path: Path) -> None:
    sources = _sources_file(tmp_path, feeds)
    env = {**pipeline.env, **INGEST_ENV}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "streams.cli", "ingest", *args], env=env,
                              capture_output=True, text=True, timeout=180,
                              cwd=Path(__file__).resolve().parents[2])

    first = cli(str(sources), "--once")
    assert first.returncode == 0, first.stderr[-3000:]
    assert f"{len(GOOD) + len(BAD)} source(s) added" in first.stdout
    assert "new items: published" in first.stdout
    records = _raw(pipeline)
    assert len(records) == ITEMS
    _check_unique(records)
    again = cli("--once")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "published" not in again.stdout.split("new items:")[1]
    assert len(_raw(pipeline)) == ITEMS
    status = cli("--status", "--json")
    rows = [json.loads(line) for line in status.stdout.splitlines() if line.strip()]
    assert {r["url"]: r["reason"] for r in rows if r["health"] != "ok"} == \
        {feeds.url(p): reason for p, reason in BAD.items()}
    assert sum(r["published"] for r in rows) == ITEMS
    text = cli("--status")
    assert "backing_off" in text.stdout and "failing since" in text.stdout
    bad = tmp_path / "bad.txt"
    bad.write_text("https://example.com/feed.xml colour=red\n")
    refused = cli(str(bad), "--once")
    assert refused.returncode != 0 and "bad.txt:1: unknown option 'colour'" in refused.stderr
    assert os.environ.get("WIREWATCH_INGEST_SOURCES_FILE") is None
