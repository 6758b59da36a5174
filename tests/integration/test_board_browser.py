"""The board (issue 21) in a real browser: Debian's chromium, driven through Selenium, on the
page ``wirewatch board`` serves, against a real worker on the embedded Kafka broker.

Never skipped: ``make test`` installs chromium and chromium-driver first (``make
browser-tools``); without them the browser fixture fails and says so. Screenshots go to the
test's tmp dir; ``WIREWATCH_BOARD_SCREENSHOT=docs/board.png`` also saves the seeds test's
desktop view there (bench/board_screenshot.py makes the README's from BBC articles).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from agents.watch.store import put_watch
from board.browser import ARRIVALS_JS, chromium, wait_until
from streams.processes import free_port, stop_process, wait_http
from streams.records import Alert, Article, Match, StorySummary, encode
from tests.conftest import REPO, SEED_000, SEED_003
from tests.integration.harness import Pipeline

TOKEN = "board-s3cret"
HOSTILE_TITLE = ('<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
                 ' Lloyd Austin & <b>friends</b>')
HOSTILE_URL = "javascript:window.__pwned = 3"

BoardStarter = Callable[..., str]


@pytest.fixture
def start_board(pipeline: Pipeline, tmp_path: Path) -> Iterator[BoardStarter]:
    """Starts ``wirewatch board`` on the pipeline's topics; returns its URL."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(**env: str) -> str:
        port = free_port()
        full = {**pipeline.env, "WIREWATCH_BOARD_PORT": str(port), **env}
        with (tmp_path / "board.log").open("ab") as out:
            process = subprocess.Popen([sys.executable, "-m", "streams.cli", "board"], env=full,
                                       stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
                                       start_new_session=True)
        processes.append(process)
        url = f"http://127.0.0.1:{port}/"
        if not wait_http(url + "healthz", 60):
            raise AssertionError("board did not start:\n" + (tmp_path / "board.log").read_text())
        return url

    yield start
    for process in processes:
        stop_process(process)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    driver = chromium(tmp_path / "chromium-profile", width=1280, height=900,
                      log_path=tmp_path / "chromedriver.log")
    try:
        yield driver
    finally:
        driver.quit()


def shot(driver: Any, tmp_path: Path, name: str, *, publish: bool = False) -> Path:
    """A screenshot in the test's tmp dir; with ``publish`` also where
    ``WIREWATCH_BOARD_SCREENSHOT`` says (e.g. docs/board.png)."""
    path = tmp_path / f"{name}.png"
    driver.save_screenshot(str(path))
    target = os.environ.get("WIREWATCH_BOARD_SCREENSHOT")
    if publish and target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(target)
    return path


def cards(driver: Any) -> list[dict[str, Any]]:
    """The alert cards on the page, top first: what a reader sees of each."""
    return list(driver.execute_script("""
        return [...document.querySelectorAll('#alerts li.card')].map((li) => ({
          id: li.dataset.alertId, revision: Number(li.dataset.revision), kind: li.dataset.kind,
          story: li.dataset.storyId, title: li.querySelector('.title').textContent,
          watch: li.querySelector('.watch').textContent,
          marks: [...li.querySelectorAll('mark')].map((m) => m.textContent)}));"""))


def cards_when(driver: Any, check: Callable[[list[dict[str, Any]]], bool]
               ) -> Callable[[], list[dict[str, Any]] | None]:
    """For ``wait_until``: the cards, once ``check(cards)`` holds."""
    def poll() -> list[dict[str, Any]] | None:
        found = cards(driver)
        return found if check(found) else None
    return poll


def live(driver: Any) -> bool:
    return bool(driver.find_element("id", "conn").get_attribute("data-state") == "live")


def severe_console(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_seeds_land_live_on_the_open_page_and_update_to_revision_2(
        pipeline: Pipeline, start_board: BoardStarter, browser: Any, tmp_path: Path) -> None:
    put_watch(pipeline.settings, "Taiwan Strait")
    put_watch(pipeline.settings, "crisis communications")
    worker_port = pipeline.start_worker()
    url = start_board(WIREWATCH_BOARD_METRICS_URLS=f"http://127.0.0.1:{worker_port}/metrics",
                      WIREWATCH_BOARD_SCRAPE_SECONDS="1")
    browser.get(url)
    wait_until(lambda: live(browser), 15, "the page's live connection")
    browser.execute_script("window.__sameDocument = true;" + ARRIVALS_JS)
    assert cards(browser) == [] and browser.find_element("id", "alerts-empty").is_displayed()

    pipeline.send("raw", SEED_000.read_bytes())
    opened = wait_until(cards_when(browser, lambda c: len(c) == 2), 60,
                        "both alerts of seed 000 on the open page")
    assert {c["watch"] for c in opened} == {"Taiwan Strait", "crisis communications"}
    assert all(c["kind"] == "opened" and c["revision"] == 1 for c in opened)
    marks = {c["watch"]: c["marks"] for c in opened}
    assert "Taiwan Strait" in marks["Taiwan Strait"]
    assert any(m.lower().replace("-", " ") == "crisis communications"
               for m in marks["crisis communications"])

    pipeline.send("raw", SEED_003.read_bytes())
    updated = wait_until(
        cards_when(browser, lambda c: [x["revision"] for x in c] == [2, 2]), 60,
        "both alerts at revision 2 after seed 003")
    assert {c["id"] for c in updated} == {c["id"] for c in opened}, "the same alerts, updated"
    assert all(c["kind"] == "update" for c in updated)
    assert browser.execute_script("return window.__sameDocument === true"), "never reloaded"

    # Within 1 s of landing on news.alerts: each card drawn vs its record's timestamp.
    landed = {(a["alert_id"], a["revision"]): a["at"] for a in orjson.loads(
        urllib.request.urlopen(url + "api/alerts").read())["alerts"]}
    for alert_id, revision, drawn_ms in browser.execute_script("return window.__arrivals"):
        if (alert_id, revision) in landed:
            delay = drawn_ms / 1000 - landed[(alert_id, revision)]
            assert delay < 1.0, f"{alert_id} r{revision} drawn {delay:.2f} s after it landed"

    # The story: both seeds (two outlets, one story), and each alert's revisions.
    browser.find_element("css selector", "#alerts li.card .watch").click()
    wait_until(lambda: len(browser.find_elements("css selector", "#story-body .articles li")) == 2,
               10, "the story's two articles")
    story_text = browser.find_element("id", "story-body").text
    assert "Shangri-La" in story_text or "Defense Ministers" in story_text
    assert "2 article(s)" in story_text
    revisions = browser.execute_script("""
        return [...document.querySelectorAll('#story-body .alert-block')].map((b) =>
          [...b.querySelectorAll('.revisions li')].map((li) => Number(li.dataset.revision)));""")
    assert revisions == [[1, 2], [1, 2]]

    # The health strip, from the worker's /metrics and news.deadletter.
    wait_until(lambda: "1/1" in browser.find_element("id", "h-workers").text, 20, "workers 1/1")
    wait_until(lambda: "/s" in browser.find_element("id", "h-throughput").text, 20, "throughput")
    assert "0" in browser.find_element("id", "h-dead").text
    shot(browser, tmp_path, "board-desktop", publish=True)

    # Filters, as a desk uses them (server-side, then live).
    kind = browser.find_element("id", "f-kind")
    kind.find_element("css selector", "option[value=opened]").click()
    wait_until(lambda: cards(browser) == [], 10, "no alert still at 'opened'")
    kind.find_element("css selector", "option[value=update]").click()
    wait_until(lambda: len(cards(browser)) == 2, 10, "both updates")
    browser.find_element("id", "f-q").send_keys("crisis")
    wait_until(lambda: [c["watch"] for c in cards(browser)] == ["crisis communications"], 10,
               "the search")

    # Phone width: one column, nothing wider than the screen.
    browser.set_window_size(390, 844)
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than a phone"
    shot(browser, tmp_path, "board-phone")
    assert severe_console(browser) == []


def hostile_records(story_id: str, watch_id: str) -> tuple[bytes, bytes]:
    """An alert and a story article with markup in every text field and a javascript: link,
    as any producer may write them to news.alerts and news.stories."""
    now = time.time()
    alert = Alert(
        alert_id="hostile-alert", kind="opened", revision=1, watch_id=watch_id,
        watch_name="Lloyd Austin", story_id=story_id, article_id="hostile-article",
        title=HOSTILE_TITLE, url=HOSTILE_URL, source="<i>Evil Wire</i>", published_at=None,
        sources=["<i>Evil Wire</i>"], article_ids=["hostile-article"], terms=["Lloyd Austin"],
        matches=[Match("Lloyd Austin", "text", 0, 12,
                       '<img src=x onerror="window.__pwned = 4"> Lloyd Austin said')],
        opened_at=now, updated_at=now, received_at=now)
    article = Article(id="hostile-article", title=HOSTILE_TITLE, text="x", url=HOSTILE_URL,
                      source="<i>Evil Wire</i>", received_at=now, story_id=story_id,
                      duplicate_of="<script>x</script>",
                      story=StorySummary(first_seen=now, last_seen=now, article_count=1,
                                         sources=["<i>Evil Wire</i>"]))
    return encode(alert), encode(article)


def test_a_watch_added_on_the_page_alerts_and_hostile_text_stays_text(
        pipeline: Pipeline, start_board: BoardStarter, browser: Any, tmp_path: Path) -> None:
    worker_port = pipeline.start_worker()
    url = start_board(WIREWATCH_API_TOKEN=TOKEN, WIREWATCH_WEBHOOK_ALLOW="127.0.0.1",
                      WIREWATCH_BOARD_METRICS_URLS=f"http://127.0.0.1:{worker_port}/metrics")
    browser.get(url)
    wait_until(lambda: live(browser), 15, "the page's live connection")
    browser.execute_script("window.__sameDocument = true;")
    browser.find_element("id", "tab-watches").click()
    field = browser.find_element

    # A query that does not parse: refused, with a caret at the parser's position.
    field("id", "w-token").send_keys(TOKEN)
    field("id", "w-name").send_keys("Lloyd Austin")
    field("id", "w-query").send_keys('"Lloyd Austin" AND (China OR Beijing')
    field("id", "w-save").click()
    error = wait_until(lambda: field("id", "w-error").text, 10, "the refusal")
    assert error == "position 36: expected ')'"
    caret = field("id", "w-query-at").text.splitlines()
    assert caret[0] == '"Lloyd Austin" AND (China OR Beijing' and caret[1] == " " * 36 + "^"
    assert field("id", "w-query").get_attribute("aria-invalid") == "true"
    assert browser.execute_script("return document.activeElement.id") == "w-query"

    field("id", "w-query").send_keys(")")
    field("id", "w-save").click()
    row = wait_until(lambda: browser.find_elements("css selector", "#watches tbody tr"), 10,
                     "the new watch in the list")
    assert "Lloyd Austin" in row[0].text and field("id", "w-error").is_displayed() is False
    watch_id = row[0].get_attribute("data-watch-id")
    worker_watches = f"http://127.0.0.1:{worker_port}/watches/"
    wait_until(lambda: watch_id in urllib.request.urlopen(worker_watches).read().decode(), 15,
               "the worker to load the watch from news.watches")

    field("id", "tab-alerts").click()
    pipeline.send("raw", SEED_000.read_bytes())
    found = wait_until(lambda: cards(browser), 60, "the page-added watch's alert")
    assert found[0]["watch"] == "Lloyd Austin" and found[0]["kind"] == "opened"

    # Markup in every field, on the topics themselves: shown as text, never run, no live link.
    alert, article = hostile_records(found[0]["story"], watch_id)
    pipeline.send("stories", article, keys=[found[0]["story"].encode()])
    pipeline.send("alerts", alert, keys=[watch_id.encode()])
    # ...and through the pipeline, whatever the clean stage lets through.
    pipeline.send("raw", orjson.dumps({
        "id": "hostile-raw", "title": HOSTILE_TITLE, "url": HOSTILE_URL, "source": "<b>Evil</b>",
        "text": "Lloyd Austin met China's defence minister in Singapore for talks on military "
                "communication. <script>window.__pwned = 5</script> The meeting ran long."}))
    hostile = wait_until(lambda: [c for c in cards(browser) if c["id"] == "hostile-alert"], 30,
                         "the hostile alert")
    assert hostile[0]["title"] == HOSTILE_TITLE
    card = browser.find_element("css selector", 'li.card[data-alert-id="hostile-alert"]')
    assert card.find_elements("css selector", ".title a") == [], "a javascript: link is no link"
    assert card.find_element("css selector", ".title .nolink").text == HOSTILE_TITLE
    card.find_element("css selector", ".watch").click()
    wait_until(lambda: HOSTILE_TITLE in field("id", "story-body").text, 10, "the hostile story")
    through = wait_until(lambda: [a for a in orjson.loads(urllib.request.urlopen(
        url + "api/alerts").read())["alerts"] if a["article_id"] == "hostile-raw"], 60,
        "the hostile article's alert, through the pipeline")[0]
    wait_until(lambda: any(c["id"] == through["alert_id"] and c["title"] == through["title"]
                           for c in cards(browser)), 10, "its card, showing its title as text")
    assert "Lloyd Austin" in through["title"]
    time.sleep(0.5)
    state = browser.execute_script("""return {
        pwned: window.__pwned === undefined ? null : window.__pwned,
        injected: document.querySelectorAll('#alerts script, #alerts img, #alerts b, #alerts i,'
                                            + ' #story script, #story img, #story i').length,
        jsLinks: [...document.querySelectorAll('a')].filter((a) => !/^https?:/.test(a.href)).length,
        same: window.__sameDocument === true};""")
    assert state == {"pwned": None, "injected": 0, "jsLinks": 0, "same": True}, state
    shot(browser, tmp_path, "board-hostile")

    def click(by: str, selector: str, what: str) -> None:
        """Find and click in one step, again if the page redrew the element in between (the
        watches table is redrawn whenever the watches change)."""
        def attempt() -> bool:
            browser.find_element(by, selector).click()
            return True
        wait_until(attempt, 10, what)

    # Edit (rate limit, webhook) and remove, from the page.
    field("id", "tab-watches").click()
    click("css selector", "#watches tbody tr button.edit", "the edit button")
    assert field("id", "w-name").get_attribute("readonly") is not None
    field("id", "w-rate").send_keys("5")
    field("id", "w-webhook").send_keys("http://127.0.0.1:9/hook")
    field("id", "w-save").click()
    wait_until(lambda: "http://127.0.0.1:9/hook" in field("css selector", "#watches tbody tr").text,
               10, "the edited watch")
    assert " 5 " in f" {field('css selector', '#watches tbody tr').text} "
    click("css selector", "#watches tbody tr button.remove", "the remove button")
    wait_until(lambda: field("css selector", "#watches tbody tr button.remove").text
               == "Confirm remove", 5, "the confirmation, kept across redraws")
    click("css selector", "#watches tbody tr button.remove", "the confirming remove button")
    wait_until(lambda: not browser.find_elements("css selector", "#watches tbody tr"), 10,
               "the removal")
    assert [e for e in severe_console(browser) if "/api/watches" not in e] == []
