"""The board (issue 21): how soon an alert is on the open page, and its memory with a full window.

    PYTHONPATH=. .venv/bin/python bench/board_bench.py                 # 20 alerts/s for 30 s
    PYTHONPATH=. .venv/bin/python bench/board_bench.py --rate 20 --seconds 10 --fill-alerts 1000

On the embedded Apache Kafka broker (or ``WIREWATCH_BROKER_URL``), under a private topic prefix,
with ``wirewatch board`` as its own process and Debian's headless chromium on its page:

1. **Latency, publish -> page**: alert records (built from BBC articles: title, sources,
   3 to 10 snippets; 70 % open a new alert, 30 % update an earlier one) are published to
   news.alerts at ``--rate`` a second. Measured in the browser: a MutationObserver on the page
   (``board.browser.ARRIVALS_JS``) notes ``Date.now()`` when each card is drawn, against the
   wall clock just before the bench handed the record to its producer. So it covers the
   broker, the board's consumer (fetch wait 100 ms), the event stream, JSON parsing and
   drawing. A Python client on the same event stream gives the part before the browser.
   Only the board's part: no worker runs (the pipeline's own publish -> alert latency is
   ``make bench``'s).
2. **Memory with the window full**: ``--fill-alerts`` alerts (2 revisions each) and
   ``--fill-articles`` story articles (full BBC texts) are published; once the board holds
   them all (its window caps: WIREWATCH_BOARD_MAX_ALERTS, _MAX_ARTICLES), its VmRSS and VmHWM
   from /proc. Then the board is restarted and timed until it has rebuilt the window from the
   topics, and its RSS read again.

The machine is shared and has 2 cores; numbers are indicative.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaProducer

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: make `streams`, `board` importable
    sys.path.insert(0, str(REPO))

from board.browser import ARRIVALS_JS, chromium, wait_until  # noqa: E402
from streams.broker import EmbeddedKafka  # noqa: E402
from streams.processes import free_port, stop_process, wait_http  # noqa: E402
from streams.records import Alert, Article, Match, StorySummary, encode  # noqa: E402
from streams.settings import load_settings  # noqa: E402
from streams.topics import bootstrap_servers, ensure_topics, topic_name  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "bbc_news_2225.jsonl.gz"
WATCHES = ["Tony Blair", "Gordon Brown", "Microsoft", "oil prices", "Chelsea", "Yukos",
           "interest rates", "Iraq", "European Union", "World Cup", "iPod", "broadband",
           "Labour", "election", "Premiership", "Oscar", "mobile phones", "China", "economy",
           "film"]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def bbc_rows(path: Path = DATA) -> list[dict[str, Any]]:
    with gzip.open(path, "rb") as handle:
        rows = [orjson.loads(line) for line in handle]
    random.Random(21).shuffle(rows)
    return rows


def snippets(text: str, term: str, rng: random.Random, count: int) -> list[Match]:
    """``count`` snippets of ``text`` as the alert stage cuts them (about 30 words, the term in
    the middle), the watch's term put in where the text does not have it."""
    words = text.split()
    out = []
    for _ in range(count):
        at = rng.randrange(max(1, len(words) - 30))
        cut = [*words[at:at + 14], term, *words[at + 14:at + 28]]
        out.append(Match(term=term, field="text", start=at, end=at + len(term),
                         snippet="…" + " ".join(cut) + "…"))
    return out


class AlertMaker:
    """Alert records from BBC rows: a new alert, or the next revision of an earlier one."""

    def __init__(self, rows: list[dict[str, Any]], seed: int = 7) -> None:
        self.rows, self.rng, self.n = rows, random.Random(seed), 0
        self.open: list[dict[str, Any]] = []

    def make(self, *, update_share: float = 0.3, now: float | None = None) -> tuple[bytes, Alert]:
        now = time.time() if now is None else now
        self.n += 1
        row = self.rows[self.n % len(self.rows)]
        if self.open and self.rng.random() < update_share:
            state = self.rng.choice(self.open)
            state["revision"] += 1
            state["sources"] = [*state["sources"], f"Outlet {state['revision']}"][-50:]
        else:
            watch = WATCHES[self.n % len(WATCHES)]
            state = {"alert_id": uuid.uuid4().hex[:16], "revision": 1, "watch": watch,
                     "story": uuid.uuid4().hex[:16], "sources": ["BBC News"], "opened": now}
            self.open.append(state)
        alert = Alert(
            alert_id=state["alert_id"], kind="opened" if state["revision"] == 1 else "update",
            revision=state["revision"], watch_id=f"w{WATCHES.index(state['watch'])}",
            watch_name=state["watch"], story_id=state["story"], article_id=f"a{self.n}",
            title=row["title"], url=f"https://www.bbc.co.uk/news/{row['id']}",
            source=state["sources"][-1], published_at=None, sources=state["sources"],
            article_ids=[f"a{i}" for i in range(state["revision"])], terms=[state["watch"]],
            matches=snippets(row["text"], state["watch"], self.rng, self.rng.randint(3, 10)),
            opened_at=state["opened"], updated_at=now, received_at=now - 0.3)
        return state["watch"].encode(), alert


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))]


def summary(name: str, values: list[float]) -> str:
    if not values:
        return f"{name}: no samples"
    ms = [1000 * v for v in values]
    return (f"{name}: n={len(ms)}  p50 {pct(ms, 50):.0f} ms  p90 {pct(ms, 90):.0f} ms  "
            f"p99 {pct(ms, 99):.0f} ms  max {max(ms):.0f} ms  mean {statistics.fmean(ms):.0f} ms")


def rss(pid: int) -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, value = line.split(":", 1)
            out[key] = int(value.split()[0]) / 1024
    return out


def status(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "api/status", timeout=5) as response:
        return dict(orjson.loads(response.read()))


def start_board(env: dict[str, str], log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with log_path.open("ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "streams.cli", "board"],
                                   env={**env, "WIREWATCH_BOARD_PORT": str(port)}, cwd=REPO,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    if not wait_http(url + "healthz", 60):
        raise SystemExit("the board did not start:\n" + log_path.read_text()[-3000:])
    return process, url


async def sse_client(url: str, arrivals: dict[tuple[str, int], float], stop: asyncio.Event
                     ) -> None:
    """Notes when each alert event arrives on the stream (before any browser work)."""
    async with aiohttp.ClientSession() as session, session.get(
            url + "events", timeout=aiohttp.ClientTimeout(total=None)) as response:
        event = ""
        while not stop.is_set():
            try:
                line = await asyncio.wait_for(response.content.readline(), 0.5)
            except TimeoutError:
                continue
            text = line.decode().rstrip("\n")
            if text.startswith("event: "):
                event = text[7:]
            elif text.startswith("data: ") and event == "alert":
                data = orjson.loads(text[6:])
                arrivals[(data["alert_id"], data["revision"])] = time.time()


async def publish_at_rate(bootstrap: str, topic: str, maker: AlertMaker, rate: float,
                          seconds: float, sent: dict[tuple[str, int], float], url: str
                          ) -> dict[tuple[str, int], float]:
    """Publishes at ``rate`` (noting each send time in ``sent``); returns when each alert's
    event reached a Python client on the board's event stream."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    stop = asyncio.Event()
    streamed: dict[tuple[str, int], float] = {}
    client = asyncio.create_task(sse_client(url, streamed, stop))
    await asyncio.sleep(1.0)
    try:
        count = int(rate * seconds)
        start = time.monotonic()
        for i in range(count):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            key, alert = maker.make()
            value = encode(alert)
            sent[(alert.alert_id, alert.revision)] = time.time()
            await producer.send(topic, key=key, value=value)
        await producer.flush()
        await asyncio.sleep(3.0)
    finally:
        stop.set()
        await client
        await producer.stop()
    return streamed


async def fill(bootstrap: str, settings: Any, rows: list[dict[str, Any]], alerts: int,
               articles: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=20,
                                max_batch_size=1024 * 1024, max_request_size=8 * 1024 * 1024)
    await producer.start()
    try:
        now = time.time()
        stories_topic = topic_name(settings, "stories")
        for i in range(articles):
            row = rows[i % len(rows)]
            story = f"story-{i // 4}"
            article = Article(
                id=f"fill-{i}", title=row["title"], text=row["text"],
                url=f"https://www.bbc.co.uk/news/{row['id']}", source="BBC News",
                received_at=now, story_id=story,
                duplicate_of=f"fill-{i - 1}" if i % 4 == 3 else None,
                story=StorySummary(first_seen=now, last_seen=now, article_count=i % 4 + 1,
                                   sources=["BBC News"]))
            await producer.send(stories_topic, key=story.encode(), value=encode(article))
        maker = AlertMaker(rows, seed=11)
        alerts_topic = topic_name(settings, "alerts")
        for _ in range(alerts):
            key, alert = maker.make(update_share=0.0)
            await producer.send(alerts_topic, key=key, value=encode(alert))
        for state in list(maker.open):  # a second revision of each
            maker.open = [state]  # the only one make() can pick to update
            key, alert = maker.make(update_share=1.0)
            await producer.send(alerts_topic, key=key, value=encode(alert))
        await producer.flush()
    finally:
        await producer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=20.0, help="alerts a second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--fill-alerts", type=int, default=5000,
                        help="alerts for the memory run (the board's default cap)")
    parser.add_argument("--fill-articles", type=int, default=20000,
                        help="story articles for the memory run (the default cap)")
    args = parser.parse_args()

    settings = load_settings()
    broker = None
    work = Path(tempfile.mkdtemp(prefix="board-bench-"))
    if settings.embedded:
        log("starting the embedded Kafka broker...")
        broker = EmbeddedKafka.start(settings)
        os.environ["WIREWATCH_BROKER_URL"] = broker.url
    prefix = f"bb{uuid.uuid4().hex[:6]}."
    os.environ["WIREWATCH_TOPIC_PREFIX"] = prefix
    settings = load_settings()
    ensure_topics(settings)
    bootstrap = bootstrap_servers(settings)
    env = {**os.environ, "WIREWATCH_BOARD_METRICS_URLS": "http://127.0.0.1:9/metrics",
           "WIREWATCH_BOARD_MAX_ALERTS": str(args.fill_alerts),
           "WIREWATCH_BOARD_MAX_ARTICLES": str(args.fill_articles)}
    rows = bbc_rows()
    board, url = start_board(env, work / "board.log")
    driver = None
    try:
        driver = chromium(work / "profile", width=1280, height=900)
        driver.get(url)
        wait_until(lambda: driver.find_element("id", "conn").get_attribute("data-state")
                   == "live", 20, "the page to go live")
        driver.execute_script(ARRIVALS_JS)
        log(f"publishing {args.rate:g} alerts/s for {args.seconds:g} s to news.alerts...")
        sent: dict[tuple[str, int], float] = {}
        streamed = asyncio.run(publish_at_rate(bootstrap, topic_name(settings, "alerts"),
                                               AlertMaker(rows), args.rate, args.seconds, sent,
                                               url))
        wait_until(lambda: len(driver.execute_script("return window.__arrivals")) >= len(sent),
                   30, "every card on the page")
        drawn = {(a, r): t / 1000 for a, r, t in driver.execute_script("return window.__arrivals")}
        page = [drawn[k] - t for k, t in sent.items() if k in drawn]
        wire = [streamed[k] - t for k, t in sent.items() if k in streamed]
        print(f"\nboard latency at {args.rate:g} alerts/s ({len(sent)} alerts, "
              f"{sum(1 for k in sent if k[1] > 1)} of them updates):")
        print("  " + summary("publish -> drawn on the page (browser)", page))
        print("  " + summary("publish -> event received (Python SSE client)", wire))
        print(f"  missing on the page: {len(sent) - len(page)}")
        driver.quit()
        driver = None

        base = rss(board.pid)
        log(f"filling the window: {args.fill_alerts} alerts x 2 revisions, "
            f"{args.fill_articles} story articles...")
        asyncio.run(fill(bootstrap, settings, rows, args.fill_alerts, args.fill_articles))
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            window = status(url)["window"]
            if window["alerts"] >= args.fill_alerts and window["articles"] >= args.fill_articles:
                break
            time.sleep(0.5)
        time.sleep(2.0)
        full = rss(board.pid)
        window = status(url)["window"]
        print(f"\nboard memory (VmRSS) with the window full ({window['alerts']:,} alerts, "
              f"{window['articles']:,} story articles, {window['stories']:,} stories):")
        print(f"  before filling {base['VmRSS']:.0f} MiB; full {full['VmRSS']:.0f} MiB "
              f"(peak {full['VmHWM']:.0f} MiB)")
        stop_process(board)
        started = time.monotonic()
        board, url = start_board(env, work / "board2.log")
        while not status(url)["ready"]:
            time.sleep(0.1)
        rebuilt = time.monotonic() - started
        window = status(url)["window"]
        again = rss(board.pid)
        print(f"  restarted: window rebuilt from the topics in {rebuilt:.1f} s "
              f"({window['alerts']:,} alerts, {window['articles']:,} articles), "
              f"VmRSS {again['VmRSS']:.0f} MiB (peak {again['VmHWM']:.0f} MiB)")
    finally:
        if driver is not None:
            driver.quit()
        stop_process(board)
        if broker is not None:
            broker.stop()


if __name__ == "__main__":
    main()
