"""docs/board.png: what a desk sees, from a real run on BBC articles (issue 21).

    PYTHONPATH=. .venv/bin/python bench/board_screenshot.py [--out docs/board.png]
        [--phone docs/board-phone.png] [--articles 2225] [--rate 60]

Starts the embedded Apache Kafka broker (or uses ``WIREWATCH_BROKER_URL``), publishes a desk's
watches to news.watches, starts one worker and ``wirewatch board``, opens the page in Debian's
headless chromium, then publishes the BBC corpus (``../shared/data/bbc_news_2225.jsonl.gz``,
read in place; file order, as raw JSON, ``--rate`` a second) to news.raw, so the alerts land on
the open page as they would on a desk. When they have settled it opens the story of the alert
with the most revisions and saves a 1280x900 screenshot (and, with ``--phone``, a 390-pixel
wide one).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: make `streams`, `board` importable
    sys.path.insert(0, str(REPO))

from agents.watch.definitions import make_watch  # noqa: E402
from board.browser import chromium, wait_until  # noqa: E402
from streams.broker import EmbeddedKafka  # noqa: E402
from streams.client import publish  # noqa: E402
from streams.processes import free_port, spawn_worker, stop_process, wait_http  # noqa: E402
from streams.records import encode  # noqa: E402
from streams.settings import load_settings  # noqa: E402
from streams.topics import bootstrap_servers, ensure_topics, topic_name  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "bbc_news_2225.jsonl.gz"
#: A desk's watches over the BBC corpus's years (2004-2005).
WATCHES = [
    ("Tony Blair", '"Tony Blair" OR "prime minister"'),
    ("Gordon Brown", '"Gordon Brown" OR chancellor'),
    ("Yukos", "Yukos OR Gazprom OR Rosneft"),
    ("Oil prices", '(oil OR crude) NEAR/5 price*'),
    ("Interest rates", '"interest rates" OR "Bank of England"'),
    ("Microsoft", "Microsoft OR Windows"),
    ("Mobile phones", '"mobile phone*" OR handset*'),
    ("Chelsea", "Chelsea OR Mourinho"),
    ("Oscars", "Oscar* OR Academy Award*"),
    ("Iraq", "Iraq OR Baghdad"),
]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def raw_messages(limit: int) -> list[bytes]:
    out = []
    with gzip.open(DATA, "rb") as handle:
        for line in handle:
            row = orjson.loads(line)
            out.append(orjson.dumps({
                "id": row["id"], "source": row.get("source") or "BBC News",
                "url": f"https://www.bbc.co.uk/news/{row['id']}", "title": row["title"],
                "text": row["text"], "language": "en"}))
            if len(out) >= limit:
                break
    return out


def status(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "api/status", timeout=5) as response:
        return dict(orjson.loads(response.read()))


def health(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "api/health", timeout=5) as response:
        return dict(orjson.loads(response.read()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "board.png")
    parser.add_argument("--phone", type=Path, default=None)
    parser.add_argument("--articles", type=int, default=2225)
    parser.add_argument("--rate", type=float, default=60.0, help="articles a second")
    args = parser.parse_args()

    settings = load_settings()
    broker = None
    work = Path(tempfile.mkdtemp(prefix="board-shot-"))
    if settings.embedded:
        log("starting the embedded Kafka broker...")
        broker = EmbeddedKafka.start(settings)
        os.environ["WIREWATCH_BROKER_URL"] = broker.url
    os.environ["WIREWATCH_TOPIC_PREFIX"] = f"shot{uuid.uuid4().hex[:6]}."
    os.environ["WIREWATCH_APP_ID"] = "wirewatch-board-shot"
    os.environ.setdefault("WIREWATCH_API_TOKEN", uuid.uuid4().hex)
    settings = load_settings()
    ensure_topics(settings)
    bootstrap = bootstrap_servers(settings)
    watches = [make_watch(name, query) for name, query in WATCHES]
    asyncio.run(publish(bootstrap, topic_name(settings, "watches"),
                        [(w.id.encode(), encode(w)) for w in watches]))
    worker = board = driver = None
    try:
        worker, worker_port = spawn_worker(dict(os.environ), log_path=work / "worker.log")
        if not wait_http(f"http://127.0.0.1:{worker_port}/readyz", 120):
            raise SystemExit("the worker did not start:\n" + (work / "worker.log").read_text())
        board_port = free_port()
        env = {**os.environ, "WIREWATCH_BOARD_PORT": str(board_port),
               "WIREWATCH_BOARD_METRICS_URLS": f"http://127.0.0.1:{worker_port}/metrics",
               "WIREWATCH_BOARD_SCRAPE_SECONDS": "2"}
        with (work / "board.log").open("ab") as out:
            board = subprocess.Popen([sys.executable, "-m", "streams.cli", "board"], env=env,
                                     cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        url = f"http://127.0.0.1:{board_port}/"
        if not wait_http(url + "healthz", 60):
            raise SystemExit("the board did not start:\n" + (work / "board.log").read_text())
        driver = chromium(work / "profile", width=1280, height=900)
        driver.get(url)
        wait_until(lambda: driver.find_element("id", "conn").get_attribute("data-state")
                   == "live", 20, "the page to go live")

        messages = raw_messages(args.articles)
        log(f"publishing {len(messages)} BBC articles at {args.rate:g}/s...")
        raw = topic_name(settings, "raw")
        step = max(1, int(args.rate / 10))
        started = time.monotonic()
        for i in range(0, len(messages), step):
            asyncio.run(publish(bootstrap, raw, [(None, m) for m in messages[i:i + step]]))
            delay = started + (i + step) / args.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        last: tuple[int, int] = (-1, -1)
        still, deadline = 0, time.monotonic() + 600
        while still < 8 and time.monotonic() < deadline:  # the pipeline done: 4 s unchanged
            window = status(url)["window"]
            now = (window["seq"], window["articles"])
            lag = health(url)["lag_messages"]
            still = still + 1 if now == last and lag == 0 else 0
            last = now
            time.sleep(0.5)
        window = status(url)["window"]
        log(f"{window['alerts']} alerts ({window['seq']} revisions) on {window['articles']} "
            f"articles of {window['stories']} stories in the window")
        best = driver.execute_script("""
            const cards = [...document.querySelectorAll('#alerts li.card')];
            cards.sort((a, b) => Number(b.dataset.revision) - Number(a.dataset.revision));
            return cards.length ? cards[0].dataset.alertId : null;""")
        if best:
            driver.find_element("css selector", f'li.card[data-alert-id="{best}"] .watch').click()
            wait_until(lambda: driver.find_elements("css selector", "#story-body .articles li"),
                       15, "the story")
            time.sleep(0.5)
        driver.execute_script("window.scrollTo(0, 0)")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(args.out))
        log(f"saved {args.out}")
        if args.phone:
            driver.set_window_size(390, 844)
            time.sleep(0.5)
            driver.save_screenshot(str(args.phone))
            log(f"saved {args.phone}")
    finally:
        if driver is not None:
            driver.quit()
        for process in (board, worker):
            if process is not None:
                stop_process(process)
        if broker is not None:
            broker.stop()


if __name__ == "__main__":
    main()
