"""The board (issue 21) without a broker: its window (bounds, revisions, stories, filters,
checked fields, highlights), its health strip, its settings, and its HTTP app (headers,
refusals as 4xx with a reason, the token, body limits, watch validation, live events)."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from agents.alert.core import decide
from board.health import DeadLetters, HealthTracker, read_metrics
from board.server import CSP, MAX_BODY_BYTES, Board, make_app
from board.settings import BoardSettings, load_board_settings
from board.window import BoardWindow, Bounds, marked, safe_url
from streams.errors import ConfigError
from streams.metrics import Metrics
from streams.records import Alert, Article, Match, StorySummary, WatchHit, encode
from streams.settings import load_settings

STATIC = Path(__file__).resolve().parents[2] / "board" / "static"
NOW = 1_800_000_000.0


def alert(alert_id: str = "a1", revision: int = 1, *, watch: str = "w1",
          watch_name: str = "Taiwan Strait", story: str = "s1", kind: str | None = None,
          title: str = "Navy chiefs agree hotline", sources: list[str] | None = None,
          updated_at: float = NOW, **extra: Any) -> dict[str, Any]:
    record = Alert(
        alert_id=alert_id, kind=kind or ("opened" if revision == 1 else "update"),
        revision=revision, watch_id=watch, watch_name=watch_name, story_id=story,
        article_id=f"art-{alert_id}-{revision}", title=title, url="https://news.example/a",
        source=(sources or ["Wire"])[-1], published_at="2026-12-01", sources=sources or ["Wire"],
        article_ids=[f"art-{revision}"], terms=["Taiwan Strait"],
        matches=[Match("Taiwan Strait", "text", 10, 23,
                       "…a near-miss in the Taiwan Strait's busy lanes…")],
        opened_at=updated_at - 60 * (revision - 1), updated_at=updated_at,
        received_at=updated_at - 0.2)
    return {**orjson.loads(encode(record)), **extra}


def article(article_id: str, story: str = "s1", *, received_at: float = NOW,
            duplicate_of: str | None = None, source: str = "Wire", **extra: Any) -> dict[str, Any]:
    record = Article(id=article_id, title=f"Title {article_id}", text="body", source=source,
                     url=f"https://news.example/{article_id}", received_at=received_at,
                     story_id=story, duplicate_of=duplicate_of,
                     story=StorySummary(first_seen=NOW - 500, last_seen=received_at,
                                        article_count=7, sources=["Wire", "Other"]))
    return {**orjson.loads(encode(record)), **extra}


# ------------------------------------------------------------------------- window ---

def test_a_card_per_alert_its_revisions_and_no_repeats() -> None:
    window = BoardWindow()
    first = window.add_alert(alert(), NOW, now=NOW)
    assert first and first["revision"] == 1 and first["kind"] == "opened" and first["seq"] == 1
    assert window.add_alert(alert(), NOW, now=NOW) is None, "a redelivered revision changes nothing"
    second = window.add_alert(alert(revision=2, sources=["Wire", "Other"]), NOW + 1, now=NOW)
    assert second and second["revision"] == 2 and second["kind"] == "update"
    assert window.add_alert(alert(revision=1), NOW + 2, now=NOW) is None, "an older revision"
    card = window.card("a1")
    assert card is not None and [h["revision"] for h in card["history"]] == [1, 2]
    assert card["history"][1]["new_sources"] == ["Other"]
    assert len(window.alerts()) == 1 and window.stats()["alerts"] == 1


def test_the_window_is_bounded_by_count_and_by_age() -> None:
    window = BoardWindow(Bounds(max_alerts=3, max_revisions=2, max_articles=4,
                                max_age_seconds=100.0))
    for i in range(5):
        window.add_alert(alert(f"a{i}", story=f"s{i}"), NOW + i, now=NOW)
    assert [c["alert_id"] for c in window.alerts()] == ["a4", "a3", "a2"], "the newest three"
    assert window.story("s0") is None, "an evicted alert leaves no trace in its story"
    for revision in range(2, 6):
        window.add_alert(alert("a4", revision, story="s4"), NOW + 10 + revision, now=NOW)
    card = window.card("a4")
    assert card is not None and [h["revision"] for h in card["history"]] == [4, 5]
    for i in range(6):
        window.add_article(article(f"x{i}", story=f"t{i % 2}"), NOW + i, now=NOW)
    assert window.stats()["articles"] == 4
    assert window.add_alert(alert("old"), NOW - 101, now=NOW) is None, "older than the window"
    assert not window.add_article(article("old"), NOW - 101, now=NOW)
    assert window.expire(now=NOW + 112) > 0
    assert [c["alert_id"] for c in window.alerts()] == ["a4"]
    assert window.expire(now=NOW + 1000) and window.stats()["alerts"] == 0
    assert window.stats()["articles"] == 0 and window.stats()["stories"] == 0


def test_story_assembly_articles_duplicates_summary_and_alert_history() -> None:
    window = BoardWindow()
    window.add_article(article("b", received_at=NOW + 5, source="Other"), NOW + 5, now=NOW)
    window.add_article(article("a", received_at=NOW), NOW, now=NOW)
    window.add_article(article("c", received_at=NOW + 9, duplicate_of="a"), NOW + 9, now=NOW)
    assert not window.add_article(article("c", received_at=NOW + 9), NOW + 9, now=NOW)
    window.add_alert(alert(), NOW, now=NOW)
    window.add_alert(alert(revision=2, sources=["Wire", "Other"]), NOW + 5, now=NOW)
    window.add_alert(alert("a2", watch="w2", watch_name="crisis communications"), NOW + 6,
                     now=NOW)
    story = window.story("s1")
    assert story is not None
    assert [a["id"] for a in story["articles"]] == ["a", "b", "c"], "oldest first"
    assert story["articles"][2]["duplicate_of_title"] == "Title a"
    assert story["first_seen"] == NOW - 500 and story["last_seen"] == NOW + 9
    assert story["article_count"] == 7 and story["source_count"] == 2
    assert [a["alert_id"] for a in story["alerts"]] == ["a1", "a2"]
    assert [h["revision"] for h in story["alerts"][0]["history"]] == [1, 2]
    assert window.story("unknown") is None


def test_filters_search_and_paging() -> None:
    window = BoardWindow()
    window.add_alert(alert("a1", title="Zürich talks on the Taiwan Strait"), NOW, now=NOW)
    window.add_alert(alert("a2", watch="w2", watch_name="crisis communications",
                           title="Crisis-communications line agreed"), NOW + 1, now=NOW)
    window.add_alert(alert("a1", 2, title="Zürich talks, day two", updated_at=NOW + 100),
                     NOW + 100, now=NOW)
    assert [c["alert_id"] for c in window.alerts()] == ["a1", "a2"], "an update moves it up"
    assert [c["alert_id"] for c in window.alerts(watch="w2")] == ["a2"]
    assert [c["alert_id"] for c in window.alerts(kind="update")] == ["a1"]
    assert [c["alert_id"] for c in window.alerts(since=NOW + 50)] == ["a1"]
    assert [c["alert_id"] for c in window.alerts(until=NOW + 50)] == ["a2"]
    assert [c["alert_id"] for c in window.alerts(text="zurich")] == ["a1"], "diacritics fold"
    assert [c["alert_id"] for c in window.alerts(text="CRISIS communicat")] == ["a2"]
    assert [c["alert_id"] for c in window.alerts(text="busy lanes")] == ["a1", "a2"], "snippets"
    assert window.alerts(text="nowhere") == []
    newest = window.alerts(limit=1)
    assert [c["alert_id"] for c in window.alerts(before=newest[0]["seq"])] == ["a2"]
    assert [c["alert_id"] for c in window.changed_after(newest[0]["seq"] - 1)] == ["a1"]
    hits = window.watch_hits()
    assert hits["w1"]["alerts"] == 1 and hits["w1"]["revisions"] == 2
    assert hits["w2"]["alerts"] == 1


def test_card_fields_follow_the_alert_record() -> None:
    """The card carries the record's fields (records.Alert, the public contract)."""
    hit = WatchHit(watch_id="w1", watch_name="Taiwan Strait", terms=["Taiwan Strait"])
    source = Article(id="x", title="T", text="B", source="Wire", story_id="s1", received_at=NOW)
    decided = decide(None, source, hit, now=NOW)
    assert decided is not None
    card = BoardWindow().add_alert(orjson.loads(encode(decided[1])), NOW, now=NOW)
    assert card is not None
    made_here = {"seq", "at", "revisions", "article_count"}  # the board's own
    record = {f.name for f in dataclasses.fields(Alert)}
    assert set(card) - made_here <= record, set(card) - made_here - record
    assert {"title", "sources", "revision", "kind", "watch_name", "matches"} <= set(card)


HOSTILE_TITLE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


def test_hostile_and_malformed_records_are_checked_field_by_field() -> None:
    window = BoardWindow()
    data = alert(title=HOSTILE_TITLE, sources=["<b>x</b>"] * 80)
    data.update(url="javascript:alert(1)", revision=True, matches="nope",
                opened_at=float("nan"), updated_at="soon", kind="<evil kind>",
                priority=["flash"], signal="surging")
    card = window.add_alert(data, NOW, now=NOW)
    assert card is not None
    assert card["title"] == HOSTILE_TITLE, "kept as text: the page writes it with textContent"
    assert card["url"] is None and card["matches"] == [] and card["kind"] == "update"
    assert card["revision"] == 1 and card["opened_at"] == 0.0 and card["updated_at"] == 0.0
    assert len(card["sources"]) == 50
    assert card["priority"] == "routine" and card["signal"] is None
    surge = window.add_alert(alert("s", kind="surge", priority="flash",
                                   signal={"name": "surge", "window": "15m", "value": 12,
                                           "baseline": 2.0, "threshold": 6, "detail": "x"}),
                             NOW, now=NOW)
    assert surge and surge["kind"] == "surge" and surge["priority"] == "flash"
    assert surge["signal"]["value"] == 12.0
    assert window.add_alert({"kind": "opened"}, NOW, now=NOW) is None
    assert window.add_alert(alert("long", title="x" * 10_000), NOW, now=NOW)["title"] == "x" * 1000
    assert not window.add_article({"id": "no story"}, NOW, now=NOW)
    assert window.refused == 2


@pytest.mark.parametrize(("url", "kept"), [
    ("https://news.example/a?b=c#d", True), ("http://news.example", True),
    ("HTTPS://NEWS.EXAMPLE/", True), ("javascript:alert(1)", False),
    ("JaVaScRiPt:alert(1)", False), (" javascript:alert(1)", False),
    ("java\tscript:alert(1)", False), ("data:text/html,<script>x</script>", False),
    ("vbscript:msgbox(1)", False), ("//evil.example/x", False), ("/relative", False),
    ("http://evil.example\\@good.example/", False), ("http://", False), ("", False),
    ("http://[::1", False), (42, False), (None, False), ("https://" + "a" * 3000, False),
])
def test_only_http_links_are_kept(url: object, kept: bool) -> None:
    assert safe_url(url) == (url if kept else None)


@pytest.mark.parametrize(("snippet", "terms", "marked_texts"), [
    ("…in the Taiwan Strait's busy lanes…", ["Taiwan Strait"], ["Taiwan Strait"]),
    ("to convene a crisis-communications working group", ["crisis communications"],
     ["crisis-communications"]),
    ("the Straits of Taiwan and the Taiwan straits", ["strait~"], ["Straits", "straits"]),
    ("Communication and communicators", ["commun*"], ["Communication", "communicators"]),
    ("an opinion piece", ['title:"opinion"'], ["opinion"]),
    ("Zürich 🚢 Taiwan Strait 🚢 drills", ["zurich", "drills", "Taiwan Strait"],
     ["Zürich", "Taiwan Strait", "drills"]),
    ("no term here", ["Taiwan Strait"], []),
    ("", ["x"], []),
])
def test_matched_terms_are_marked_in_snippets(snippet: str, terms: list[str],
                                              marked_texts: list[str]) -> None:
    parts = marked(snippet, terms)
    assert "".join(text for text, _ in parts) == snippet
    assert [text for text, is_term in parts if is_term] == marked_texts


WORDS = ["Taiwan", "Strait", "strait's", "straits", "crisis-communications", "Crisis",
         "communications", "commun", "Communicators", "policy", "policies", "the", "(a)",
         "drills,", "“quoted”", "…", "x_y", "42", "Taiwan-Strait"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=14),
       st.lists(st.sampled_from(["Taiwan Strait", "crisis communications", "commun*",
                                 "policy", "strait~", 'title:"drills"', "42", "x"]),
                min_size=1, max_size=3),
       st.sampled_from([" ", "  ", " - ", "\n"]))
def test_the_fast_highlighter_marks_what_the_token_matcher_marks(
        words: list[str], terms: list[str], gap: str) -> None:
    from board.window import _marked_by_tokens

    snippet = gap.join(words)
    assert marked(snippet, terms) == _marked_by_tokens(snippet, tuple(dict.fromkeys(terms)))


# ------------------------------------------------------------------------- health ---

def test_health_reads_the_workers_metrics_text() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.articles.labels("clean", "received").inc(10)
    metrics.consumer_lag_messages.labels("p.news.raw", "0").set(7)
    metrics.consumer_lag_messages.labels("p.news.raw", "1").set(3)
    metrics.consumer_lag_seconds.labels("p.news.raw", "0").set(2.5)
    first = read_metrics(generate_latest(registry).decode(), NOW)
    metrics.articles.labels("clean", "received").inc(40)
    second = read_metrics(generate_latest(registry).decode(), NOW + 10)
    assert first.received["clean"] == 10 and second.received["clean"] == 50
    tracker = HealthTracker(["http://w1/metrics", "http://w2/metrics"])
    tracker.observe("http://w1/metrics", first)
    tracker.observe("http://w1/metrics", second)
    tracker.failed("http://w2/metrics", "connection refused")
    dead = DeadLetters()
    dead.add(NOW - 4000, "clean")
    dead.add(NOW - 10, "clean")
    dead.add(NOW - 5, "webhook")
    snap = tracker.snapshot(dead_letters=dead.last_hour(NOW), topic_prefix="p.")
    assert snap["throughput"]["clean"] == 4.0
    assert snap["lag_messages"] == 10 and snap["lag_by_topic"] == {"news.raw": 10}
    assert snap["lag_seconds"] == 2.5
    assert snap["workers_up"] == 1 and "connection refused" in snap["errors"][0]
    assert snap["dead_letters"]["last_hour"] == 2
    assert snap["dead_letters"]["by_stage"] == {"clean": 1, "webhook": 1}
    # A restarted worker's counters start again from zero: its rate counts from there.
    metrics.articles.labels("clean", "received").inc(-0)  # (counters cannot go down here)
    restarted = dataclasses.replace(second, at=NOW + 20, received={"clean": 20.0})
    tracker.observe("http://w1/metrics", restarted)
    assert tracker.snapshot(dead_letters={})["throughput"]["clean"] == 2.0


def test_board_settings_from_the_environment() -> None:
    conf = load_board_settings({"WIREWATCH_BOARD_PORT": "7001",
                                "WIREWATCH_BOARD_MAX_ALERTS": "10"}, host="0.0.0.0")
    assert (conf.port, conf.max_alerts, conf.host) == (7001, 10, "0.0.0.0")
    settings = load_settings({"WIREWATCH_WEB_PORT": "6099"})
    assert conf.metrics_targets(settings) == ["http://127.0.0.1:6099/metrics"]
    assert BoardSettings(metrics_urls="http://a/metrics, http://b/metrics").metrics_targets(
        settings) == ["http://a/metrics", "http://b/metrics"]
    for bad in ({"WIREWATCH_BOARD_PORT": "x"}, {"WIREWATCH_BOARD_MAX_ALERTS": "0"},
                {"WIREWATCH_BOARD_WINDOW_HOURS": "-1"}):
        with pytest.raises(ConfigError):
            load_board_settings(bad)


# --------------------------------------------------------------------- static files ---

def test_the_page_has_no_inline_script_or_style_and_the_script_writes_no_markup() -> None:
    html = (STATIC / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline script: CSP would block it"
    assert "<style" not in html and not re.search(r"\sstyle=", html)
    assert not re.search(r"\son[a-z]+=", html), "inline event handlers"
    script = (STATIC / "board.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function", "setAttribute('on", ".style."):
        assert sink not in script, sink
    css = (STATIC / "board.css").read_text()
    assert "@media (max-width" in css, "a phone-width layout"


# ------------------------------------------------------------------------ the app ---

TOKEN = "t0ken"

Run = Callable[[TestClient, Board], Awaitable[None]]


def with_app(run: Run, *, token: str = TOKEN, **board_env: Any) -> None:
    settings = load_settings({"WIREWATCH_API_TOKEN": token} if token else {})
    board = Board(settings, BoardSettings(**board_env), connect=False)

    async def main() -> None:
        async with TestClient(TestServer(make_app(board))) as client:
            await run(client, board)

    asyncio.run(main())


async def _json(response: Any) -> Any:
    return orjson.loads(await response.read())


def test_every_answer_carries_the_security_headers() -> None:
    async def run(client: TestClient, board: Board) -> None:
        for path in ("/", "/static/board.js", "/static/board.css", "/api/alerts", "/nowhere"):
            response = await client.get(path)
            headers = response.headers
            assert headers["Content-Security-Policy"] == CSP, path
            assert headers["X-Content-Type-Options"] == "nosniff"
            assert headers["X-Frame-Options"] == "DENY"
        assert "'unsafe-inline'" not in CSP and "frame-ancestors 'none'" in CSP
        assert "script-src 'self'" in CSP
        page = await client.get("/")
        assert page.content_type == "text/html"
        script = await client.get("/static/board.js")
        assert script.content_type == "text/javascript"

    with_app(run)


BAD_READS = [
    ("/api/alerts?kind=%3Cb%3E", "kind"), ("/api/alerts?since=yesterday", "since"),
    ("/api/alerts?since=nan", "since"), ("/api/alerts?limit=0", "limit"),
    ("/api/alerts?limit=abc", "limit"), ("/api/alerts?before=-1", "before"),
    (f"/api/alerts?q={'x' * 300}", "q"), (f"/api/stories/{'s' * 600}", "story_id"),
    ("/events?after=garbage", "after"), ("/api/watches?limit=99999", "limit"),
]


def test_invalid_reads_are_4xx_with_a_reason() -> None:
    async def run(client: TestClient, board: Board) -> None:
        for path, word in BAD_READS:
            response = await client.get(path)
            assert response.status == 400, path
            assert word in (await _json(response))["error"], path
        missing = await client.get("/api/stories/unknown")
        assert missing.status == 404 and "not in the board's window" in (await _json(missing))["error"]
        assert (await client.get("/api/alerts/unknown")).status == 404
        nowhere = await client.get("/nowhere")
        assert nowhere.status == 404 and "error" in await _json(nowhere)
        wrong = await client.put("/api/watches")
        assert wrong.status == 405 and "error" in await _json(wrong)
        ok = await client.get("/api/alerts?kind=opened&since=1&until=2e9&q=strait&limit=5")
        assert ok.status == 200 and (await _json(ok))["alerts"] == []

    with_app(run)


def _post(client: TestClient, body: Any, *, token: str | None = TOKEN, path: str = "/api/watches",
          raw: bytes | None = None, content_type: str = "application/json") -> Any:
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.post(path, data=raw if raw is not None else orjson.dumps(body), headers=headers)


def test_watch_writes_need_the_token_a_json_body_and_pass_the_shared_validation() -> None:
    async def run(client: TestClient, board: Board) -> None:
        body = {"name": "Taiwan Strait"}
        assert (await _post(client, body, token=None)).status == 401
        assert (await _post(client, body, token="wrong")).status == 401
        in_url = await _post(client, body, path=f"/api/watches?token={TOKEN}")
        assert in_url.status == 400 and "header" in (await _json(in_url))["error"]
        assert (await _post(client, body, content_type="text/plain")).status == 415
        big = await _post(client, None, raw=orjson.dumps({"name": "x" * (MAX_BODY_BYTES + 10)}))
        assert big.status == 413 and "error" in await _json(big)
        for raw in (b"{", b"[1, 2]", b"\xff\xfe", b"null"):
            response = await _post(client, None, raw=raw)
            assert response.status == 400, raw

        refused = await _post(client, {"name": "w", "query": '  ("Taiwan Strait" OR drills'})
        reply = await _json(refused)
        assert refused.status == 400 and reply["field"] == "query"
        assert reply["position"] == 26 and reply["text"] == '("Taiwan Strait" OR drills'
        assert reply["error"] == "position 26: expected ')'"
        as_name = await _json(await _post(client, {"name": "bad (name"}))
        assert as_name["field"] == "name" and as_name["position"] == 9
        for bad, field in [({"name": "w", "rate_limit": 0}, "rate_limit"),
                           ({"name": "w", "rate_limit": "ten"}, "rate_limit"),
                           ({"name": "w", "webhook_url": "ftp://x/"}, "webhook_url"),
                           ({"name": "w", "webhook_url": "http://10.0.0.1/hook"}, "webhook_url"),
                           ({"name": "Taiwan\x00Strait"}, "name"), ({"name": 5}, "name")]:
            response = await _post(client, bad)
            assert response.status == 400, bad
            assert (await _json(response)).get("field") == field, (bad, await _json(response))
        for bad in ({"query": "x"}, {"name": "w", "sneaky": 1}, {"name": "w", "backfill": "yes"}):
            assert (await _post(client, bad)).status == 400, bad
        check = await _post(client, {"name": "w", "query": "a AND ("}, token=None,
                            path="/api/watches/check")
        assert check.status == 400 and (await _json(check))["position"] == 7
        fine = await _post(client, {"name": "w", "query": "a AND b"}, token=None,
                           path="/api/watches/check")
        assert fine.status == 200

        created = await _post(client, {"name": "PLA drills", "query": '"Taiwan Strait" NEAR/10 '
                                       "drills", "rate_limit": 5, "webhook_url": ""})
        assert created.status == 201
        watch = await _json(created)
        listed = await _json(await client.get("/api/watches"))
        assert [w["name"] for w in listed["watches"]] == ["PLA drills"] and listed["writable"]
        edited = await _json(await _post(client, {"name": "PLA drills", "query": "drills",
                                                  "rate_limit": 9}))
        assert edited["id"] == watch["id"] and edited["created_at"] == watch["created_at"]
        assert board.watches[watch["id"]].rate_limit == 9
        delete = client.delete
        assert (await delete(f"/api/watches/{watch['id']}")).status == 401
        headers = {"Authorization": f"Bearer {TOKEN}"}
        assert (await delete("/api/watches/nope", headers=headers)).status == 404
        assert (await delete(f"/api/watches/{watch['id']}", headers=headers)).status == 200
        assert board.watches == {}

    with_app(run)


def test_without_a_configured_token_writes_are_disabled() -> None:
    async def run(client: TestClient, board: Board) -> None:
        response = await _post(client, {"name": "x"}, token="")
        assert response.status == 403 and "WIREWATCH_API_TOKEN" in (await _json(response))["error"]

    with_app(run, token="")


def test_junk_requests_are_never_a_500() -> None:
    junk = [b"", b"{}", b'{"name": null}', b'{"name": []}', b'{"name": "x", "query": 7}',
            b'{"name": "x", "rate_limit": 1e400}', b'{"name": "x", "rate_limit": 2e19}',
            b'{"name": "\\ud800"}', b'{"name": "x", "webhook_url": {"a": 1}}',
            b'{"name": "x", "query": "' + b"(" * 900 + b'"}', "\u2028".encode(),
            b'{"name": "' + "é".encode() * 250 + b'"}']

    async def run(client: TestClient, board: Board) -> None:
        for raw in junk:
            for path in ("/api/watches", "/api/watches/check"):
                response = await _post(client, None, raw=raw, path=path)
                assert 400 <= response.status < 500, (raw[:40], response.status)

    with_app(run)


def test_live_events_say_hello_then_carry_each_new_alert() -> None:
    async def run(client: TestClient, board: Board) -> None:
        response = await client.get("/events")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")

        async def event(name: str) -> dict[str, Any]:
            while True:
                line = (await asyncio.wait_for(response.content.readline(), 5)).decode()
                if line.startswith(f"event: {name}"):
                    data = (await response.content.readline()).decode()
                    return orjson.loads(data.removeprefix("data: "))

        hello = await event("hello")
        assert hello["epoch"] == board.epoch and hello["ready"] is True
        board.take("alerts", b"w1", encode_alert(alert()), NOW, NOW)
        board.take("alerts", b"w1", b"not json", NOW, NOW)  # skipped, counted
        arrived = await event("alert")
        assert arrived["alert_id"] == "a1" and arrived["seq"] == 1
        board.take("alerts", b"w1", encode_alert(alert(revision=2)), NOW, NOW)
        assert (await event("alert"))["revision"] == 2
        assert board.window.refused == 1
        response.close()

        # A page that reconnects with the last id it saw gets what it missed, in order.
        board.take("alerts", b"w2", encode_alert(alert("a2", story="s2")), NOW, NOW)
        again = await client.get("/events", headers={"Last-Event-ID": f"{board.epoch}.1"})
        seen = []
        while len(seen) < 2:
            line = (await asyncio.wait_for(again.content.readline(), 5)).decode()
            if line.startswith("id: "):
                seen.append(line.strip().removeprefix("id: "))
        assert seen == [f"{board.epoch}.2", f"{board.epoch}.3"]
        again.close()

    with_app(run)


def encode_alert(data: dict[str, Any]) -> bytes:
    return orjson.dumps(data)
