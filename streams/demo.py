"""``wirewatch demo``: the whole pipeline on the embedded broker, as a new user first sees it.

It starts Apache Kafka (unless WIREWATCH_BROKER_URL is set), creates the topics, publishes
the sample watches, starts one worker process, publishes the sample articles (two outlets on
one event, a syndicated copy, an unrelated local story, the first article again, and a broken
message), prints each alert as it arrives, then a few metrics and the metrics URL, and last
how to see the same alerts on the desk's live page. With ``board=True`` (``wirewatch demo
--board``) it also starts ``wirewatch board`` before publishing, so the alerts land on the open
page as they come, and keeps everything up until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import click

from agents.watch.definitions import load_watch_file
from streams.broker import EmbeddedKafka
from streams.client import follow, publish
from streams.console import format_alert
from streams.processes import free_port, spawn_worker, stop_process, wait_http
from streams.records import Alert, decode, encode
from streams.settings import load_settings
from streams.topics import bootstrap_servers, ensure_topics, topic_name

__all__ = ["SAMPLES", "run_demo", "sample_messages"]

SAMPLES = Path(__file__).parent / "samples"

#: The metrics shown at the end of the demo (prefixes of series names).
SHOWN_METRICS = ("wirewatch_articles_total", "wirewatch_alerts_total",
                 "wirewatch_duplicates_total", "wirewatch_dead_letters_total")


def sample_messages() -> list[bytes]:
    """The sample articles in publishing order; the first is sent twice (an exact copy)."""
    files = sorted(p for p in SAMPLES.iterdir() if p.name[:2].isdigit())
    bodies = [p.read_bytes() for p in files]
    return bodies[:1] + bodies[1:] + bodies[:1]


def _interesting_metrics(text: str) -> list[str]:
    return [line for line in text.splitlines()
            if line.startswith(SHOWN_METRICS) and not line.rstrip().endswith(" 0.0")]


async def _print_alerts(bootstrap: str, topic: str, timeout: float, expected: int) -> int:
    seen = 0
    start = time.monotonic()

    async def consume() -> None:
        nonlocal seen
        async for _key, value in follow(bootstrap, topic):
            click.echo(format_alert(decode(Alert, value)))
            seen += 1
            if seen >= expected:
                return

    try:
        await asyncio.wait_for(consume(), timeout)
    except TimeoutError:
        click.echo(f"(stopped waiting after {time.monotonic() - start:.0f}s)")
    return seen


#: The board's port unless WIREWATCH_BOARD_PORT says otherwise (board/settings.py).
BOARD_PORT = 6070


def _board_port() -> int:
    """WIREWATCH_BOARD_PORT (or 6070) when it is free, else any free port."""
    wanted = int(os.environ.get("WIREWATCH_BOARD_PORT") or BOARD_PORT)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", wanted))
        except OSError:
            return free_port()
    return wanted


def _start_board(work: Path, metrics_url: str) -> tuple[subprocess.Popen[bytes], str]:
    """``wirewatch board`` on the demo's broker, reading the worker's metrics."""
    port = _board_port()
    env = {**os.environ, "WIREWATCH_BOARD_PORT": str(port),
           "WIREWATCH_BOARD_METRICS_URLS": metrics_url}
    with (work / "board.log").open("ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "streams.cli", "board"], env=env,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return process, f"http://127.0.0.1:{port}/"


def _command_name() -> str:
    """How the user ran us (``.venv/bin/wirewatch`` from ``make demo``), for the hint."""
    argv0 = Path(sys.argv[0])
    if argv0.name != "wirewatch":
        return "wirewatch"
    try:
        return str(argv0.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(argv0)


def run_demo(*, linger: float, timeout: float, board: bool = False) -> int:
    settings = load_settings()
    broker = None
    work = Path(tempfile.mkdtemp(prefix="wirewatch-demo-"))
    if settings.embedded:
        click.echo(f"starting embedded Apache Kafka {settings.kafka_version} "
                   "(the first run fetches its jars with Maven)...")
        broker = EmbeddedKafka.start(settings)
        os.environ["WIREWATCH_BROKER_URL"] = broker.url
        settings = load_settings()
        click.echo(f"  Kafka ready at {broker.bootstrap}")
    worker = None
    board_process: subprocess.Popen[bytes] | None = None
    try:
        ensure_topics(settings, replication=settings.replication_factor)
        bootstrap = bootstrap_servers(settings)
        watches = load_watch_file(SAMPLES / "watches.txt")
        asyncio.run(publish(bootstrap, topic_name(settings, "watches"),
                            [(w.id.encode(), encode(w)) for w in watches]))
        click.echo("watches: " + ", ".join(repr(w.name) for w in watches))
        log_path = work / "worker.log"
        if board:  # the page's watch form needs the token; the worker's API shares it
            os.environ.setdefault("WIREWATCH_API_TOKEN", secrets.token_urlsafe(12))
        worker, port = spawn_worker(dict(os.environ), log_path=log_path)
        metrics_url = f"http://127.0.0.1:{port}/metrics"
        click.echo(f"starting worker (log: {log_path})...")
        if not wait_http(f"http://127.0.0.1:{port}/readyz", 90):
            click.echo("the worker did not start; its log says:\n" +
                       log_path.read_text(errors="replace")[-3000:])
            return 1
        if board:
            board_process, board_url = _start_board(work, metrics_url)
            if not wait_http(board_url + "healthz", 60):
                click.echo("the board did not start; its log says:\n" +
                           (work / "board.log").read_text(errors="replace")[-3000:])
                return 1
            click.echo(f"board: {board_url}  - open it now: the alerts land on it live "
                       f"(API token for its watch form: {os.environ['WIREWATCH_API_TOKEN']})")
        messages = sample_messages()
        for body in messages:
            # news.raw has several partitions; spacing the sends keeps the story's order
            # (original first, syndicated copy later) as a real feed would have it.
            asyncio.run(publish(bootstrap, topic_name(settings, "raw"), [(None, body)]))
            time.sleep(0.3)
        click.echo(f"published {len(messages)} sample messages to {topic_name(settings, 'raw')}"
                   " (two outlets on one event, a syndicated copy, a local story, an exact"
                   " repeat, a broken message)\n")
        # Two watches x (opened by outlet 1, updates by outlet 2 and the syndicated copy).
        seen = asyncio.run(_print_alerts(bootstrap, topic_name(settings, "alerts"), timeout,
                                         expected=6))
        time.sleep(1.0)  # let the last metrics settle
        with urllib.request.urlopen(metrics_url, timeout=5) as response:
            shown = _interesting_metrics(response.read().decode())
        click.echo(f"\n{seen} alert(s). Metrics (non-zero):")
        for line in shown:
            click.echo(f"  {line}")
        click.echo(f"\nmetrics: {metrics_url}")
        if board:
            click.echo(f"board: {board_url}  (alerts, their stories, watches, health)")
        else:
            click.echo("\nTo see these alerts on the desk's live board (up until Ctrl-C):\n"
                       f"  {_command_name()} demo --board\n"
                       f"then open http://127.0.0.1:{BOARD_PORT}/ (it prints another address "
                       "if that port is taken).")
        if linger > 0:
            click.echo("worker still running; Ctrl-C to stop." if not board else
                       "worker and board still running; Ctrl-C to stop.")
            try:
                time.sleep(linger if linger != float("inf") else 10**9)
            except KeyboardInterrupt:
                pass
        return 0 if seen else 1
    finally:
        if board_process is not None:
            stop_process(board_process)
        if worker is not None:
            stop_process(worker)
        if broker is not None:
            broker.stop()
