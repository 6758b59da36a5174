"""The ``wirewatch`` command.

    wirewatch demo                     embedded broker + worker + sample articles; prints alerts
    wirewatch worker [FAUST OPTIONS]   run the pipeline (starts the embedded broker if none is set)
    wirewatch broker                   run the embedded broker alone, in the foreground
    wirewatch publish FILE... | -      send raw articles to news.raw (a .jsonl file: one per line)
    wirewatch alerts                   follow news.alerts
    wirewatch board                    the desk's live page: alerts, stories, watches, health
    wirewatch watch add NAME [QUERY] | list | remove ID
    wirewatch ingest SOURCES [--once | --no-worker] | --status   follow feeds and sitemaps

With no ``WIREWATCH_BROKER_URL`` set, ``worker`` and ``broker`` start the embedded Apache
Kafka and record its address in the cache folder, so ``publish``, ``alerts`` and ``watch``
run from another terminal find it.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from streams.broker import EmbeddedKafka
from streams.console import format_alert
from streams.errors import BrokerError, WatchError, WirewatchError
from streams.processes import wait_for_port
from streams.records import Alert, decode
from streams.settings import Settings, load_settings
from streams.topics import bootstrap_servers, ensure_topics, topic_name

__all__ = ["main"]


def _url_file(settings: Settings) -> Path:
    return Path(settings.cache_dir) / "embedded-broker.url"


def _settings_with_broker() -> Settings:
    """Settings whose broker URL is set: from the environment, or a running embedded broker."""
    settings = load_settings()
    if settings.broker_url:
        return settings
    url_file = _url_file(settings)
    if url_file.exists():
        url = url_file.read_text().strip()
        port = int(url.rsplit(":", 1)[-1])
        if wait_for_port(port, 1.0):
            os.environ["WIREWATCH_BROKER_URL"] = url
            return load_settings()
        url_file.unlink(missing_ok=True)  # left by a broker that is gone
    raise click.ClickException(
        "no broker: set WIREWATCH_BROKER_URL, or start `wirewatch worker` (or `wirewatch "
        "broker`) first, which runs the embedded one.")


def _start_embedded(settings: Settings, *, persistent: bool) -> EmbeddedKafka:
    click.echo(f"starting embedded Apache Kafka {settings.kafka_version} (KRaft, loopback)"
               " - the first run fetches its jars with Maven...", err=True)
    data_dir = Path(settings.cache_dir) / "embedded-data" if persistent else None
    try:
        broker = EmbeddedKafka.start(settings, data_dir=data_dir)
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from None
    os.environ["WIREWATCH_BROKER_URL"] = broker.url
    click.echo(f"embedded Kafka ready at {broker.bootstrap}", err=True)
    return broker


@click.group()
def main() -> None:
    """wirewatch: clean, tag, deduplicate and alert on a stream of news articles."""


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("faust_args", nargs=-1, type=click.UNPROCESSED)
def worker(faust_args: tuple[str, ...]) -> None:
    """Run the pipeline worker (Faust worker options pass through, e.g. --web-port)."""
    settings = load_settings()
    broker = None
    url_file = _url_file(settings)
    if settings.embedded:
        broker = _start_embedded(settings, persistent=True)
        url_file.write_text(broker.url)
        settings = load_settings()
    try:
        ensure_topics(settings, replication=settings.replication_factor)
        from streams.app import app, load_agents

        load_agents()
        level = {"warning": "warn", "critical": "crit"}.get(settings.log_level, settings.log_level)
        args = list(faust_args)
        if not any(a in ("-l", "--loglevel") or a.startswith("--loglevel=") for a in args):
            args = ["--loglevel", level, *args]
        sys.argv = ["wirewatch", "worker", *args]
        app.main()
    finally:
        if broker is not None:
            url_file.unlink(missing_ok=True)
            broker.stop()


@main.command()
def broker() -> None:
    """Run the embedded Apache Kafka broker in the foreground until Ctrl-C."""
    settings = load_settings()
    kafka = _start_embedded(settings, persistent=True)
    _url_file(settings).write_text(kafka.url)
    click.echo(f"WIREWATCH_BROKER_URL={kafka.url}")
    # SIGTERM (a service manager's stop) must run the clean-up below as Ctrl-C does: stop
    # Java and remove the URL file, instead of ending Python on the spot.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        kafka.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        _url_file(settings).unlink(missing_ok=True)
        kafka.stop()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _read_articles(paths: tuple[str, ...]) -> Iterator[bytes]:
    for path in paths:
        if path == "-":
            for line in sys.stdin.buffer:
                if line.strip():
                    yield line.rstrip(b"\n")
            continue
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as handle:
            if ".jsonl" in path:
                yield from (line.rstrip(b"\n") for line in handle if line.strip())
            else:
                yield handle.read()


@main.command()
@click.argument("paths", nargs=-1, required=True)
def publish(paths: tuple[str, ...]) -> None:
    """Publish raw articles to news.raw: each FILE is one article (JSON, text or HTML); a
    .jsonl(.gz) file or '-' (stdin) holds one article per line."""
    settings = _settings_with_broker()
    ensure_topics(settings, replication=settings.replication_factor)
    from streams.client import publish as send

    count = asyncio.run(send(bootstrap_servers(settings), topic_name(settings, "raw"),
                             ((None, body) for body in _read_articles(paths))))
    click.echo(f"published {count} article(s) to {topic_name(settings, 'raw')}")


@main.command()
@click.option("--from-beginning/--new-only", default=True)
@click.option("--json", "as_json", is_flag=True, help="print the raw JSON records")
def alerts(from_beginning: bool, as_json: bool) -> None:
    """Follow news.alerts and print each alert."""
    settings = _settings_with_broker()
    from streams.client import follow

    async def run() -> None:
        async for _key, value in follow(bootstrap_servers(settings),
                                        topic_name(settings, "alerts"),
                                        from_beginning=from_beginning):
            click.echo(value.decode() if as_json else format_alert(decode(Alert, value)))

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


@main.command()
@click.option("--host", default=None,
              help="interface to serve on (WIREWATCH_BOARD_HOST, default 127.0.0.1)")
@click.option("--port", type=int, default=None, help="port (WIREWATCH_BOARD_PORT, default 6070)")
@click.option("--metrics-url", "metrics_urls", multiple=True,
              help="a worker's /metrics for the health strip; repeat for several "
                   "(WIREWATCH_BOARD_METRICS_URLS; default: the local worker's port)")
def board(host: str | None, port: int | None, metrics_urls: tuple[str, ...]) -> None:
    """Serve the desk's live page until Ctrl-C: alerts as they land on news.alerts, their
    stories, the watches (add, edit, remove with WIREWATCH_API_TOKEN) and the pipeline's
    health. It reads the topics with its own group-less consumer."""
    from board.server import run_board
    from board.settings import load_board_settings

    try:
        conf = load_board_settings(host=host, port=port,
                                   metrics_urls=",".join(metrics_urls) or None)
    except WirewatchError as exc:
        raise click.ClickException(str(exc)) from None
    settings = _settings_with_broker()
    ensure_topics(settings, replication=settings.replication_factor)
    run_board(settings, conf, announce=click.echo)


@main.group()
def watch() -> None:
    """Manage watched topics (stored in the compacted news.watches topic)."""


@watch.command("add")
@click.argument("name")
@click.argument("query", required=False)
@click.option("--webhook", help="POST this watch's alerts to this http(s) URL")
@click.option("--rate-limit", type=int, help="alerts per rate window before a summary")
@click.option("--backfill", is_flag=True,
              help="also alert on the stories still in the dedup window")
@click.option("--priority", type=click.Choice(["routine", "urgent", "flash"]),
              help="the least priority this watch's alerts get")
@click.option("--digest", type=click.Choice(["hourly", "daily"]),
              help="also send one digest of the period's stories")
@click.option("--digest-only", is_flag=True, help="no live alerts, only the digest")
@click.option("--webhook-format", type=click.Choice(["json", "slack", "teams"]),
              default="json", show_default=True, help="the webhook's payload")
@click.option("--spike-hours", type=int, help="baseline of the hourly spike test (12)")
@click.option("--spike-days", type=int, help="baseline of the daily spike test (14)")
@click.option("--trend-alerts", is_flag=True,
              help="alert when an entity the query names starts trending")
def watch_add(name: str, query: str | None, webhook: str | None, rate_limit: int | None,
              backfill: bool, priority: str | None, digest: str | None, digest_only: bool,
              webhook_format: str, spike_hours: int | None, spike_days: int | None,
              trend_alerts: bool) -> None:
    """Add (or replace) a watch; QUERY defaults to NAME (see the README's query language)."""
    from agents.watch.definitions import make_watch
    from agents.watch.store import put_watch
    from agents.webhook.core import refusal_reason

    options: dict[str, Any] = {
        "priority": priority, "digest": digest, "live": not digest_only,
        "webhook_format": webhook_format, "spike_hours": spike_hours, "spike_days": spike_days,
        "trend_alerts": trend_alerts,
    }
    try:
        # Checked in full before looking for a broker, so a bad watch is refused with its
        # reason whether or not one runs; put_watch checks again with the same calls.
        make_watch(name, query, webhook_url=webhook, rate_limit=rate_limit, **options)
        if webhook is not None:
            reason = asyncio.run(refusal_reason(webhook, load_settings().webhook_allow))
            if reason:
                raise WatchError(f"webhook refused: {reason}")
        settings = _settings_with_broker()
        new = put_watch(settings, name, query, webhook_url=webhook, rate_limit=rate_limit,
                        **options)
    except WatchError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"added watch {new.id}: {new.name} = {new.query}")
    if backfill:
        from agents.alert.backfill import backfill as run_backfill

        count = asyncio.run(run_backfill(settings, new))
        click.echo(f"backfill: {count} recent article(s) hit it; their alerts follow")


@watch.command("list")
def watch_list() -> None:
    """List the watches on news.watches."""
    from agents.watch.store import list_watches

    for item in list_watches(_settings_with_broker()):
        click.echo(f"{item.id}\t{item.name}\t{item.query}")


@watch.command("remove")
@click.argument("watch_id")
def watch_remove(watch_id: str) -> None:
    """Remove a watch by id (writes a tombstone to news.watches)."""
    from agents.watch.store import remove_watch

    remove_watch(_settings_with_broker(), watch_id)
    click.echo(f"removed watch {watch_id}")


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("sources_file", required=False,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--once", is_flag=True,
              help="poll every source once in this process, print what it did, and exit "
                   "(refused while workers run: they poll the same sources)")
@click.option("--no-worker", is_flag=True,
              help="only publish the list to news.sources; running workers follow it")
@click.option("--status", "show_status", is_flag=True,
              help="print every source's health from news.ingest-state, and exit")
@click.option("--json", "as_json", is_flag=True, help="--status as JSON lines")
@click.argument("faust_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def ingest(ctx: click.Context, sources_file: Path | None, once: bool, no_worker: bool,
           show_status: bool, as_json: bool, faust_args: tuple[str, ...]) -> None:
    """Follow the feeds and sitemaps of SOURCES (one URL per line, with options such as
    interval=300 source="Example News"; see agents/ingest/sources.py) into news.raw.

    SOURCES becomes the list on news.sources (sources it does not name are removed); then a
    worker runs with ingest until Ctrl-C (each worker polls its share of the sources)."""
    from agents.ingest.sources import SourcesError, load_sources

    settings = load_settings()
    sources = None
    if sources_file is not None:
        try:
            sources = load_sources(sources_file,
                                   min_interval=settings.ingest_min_interval_seconds)
        except SourcesError as exc:
            raise click.ClickException(str(exc)) from None
    if show_status:
        _ingest_status(as_json)
        return
    if not once and not no_worker:
        if sources_file is None:
            raise click.ClickException("give a SOURCES file (or --status, or --once)")
        os.environ["WIREWATCH_INGEST_SOURCES_FILE"] = str(sources_file.resolve())
        ctx.invoke(worker, faust_args=faust_args)
        return
    from agents.ingest.once import group_members, poll_once, publish_sources

    settings = _settings_with_broker()
    ensure_topics(settings, replication=settings.replication_factor)
    if sources is not None:
        result = asyncio.run(publish_sources(settings, sources))
        click.echo(f"{sources_file}: {result.added} source(s) added, {result.changed} changed, "
                   f"{result.removed} removed, {result.unchanged} unchanged")
    if not once:
        return
    if asyncio.run(group_members(settings)):
        raise click.ClickException("workers are running (their consumer group has members) "
                                   "and poll these sources; --once would poll them too")
    tally, rows = asyncio.run(poll_once(settings))
    polls = ", ".join(f"{k} {v}" for k, v in sorted(tally.polls.items())) or "none"
    items = ", ".join(f"{k} {v}" for k, v in sorted(tally.item_counts.items())) or "none"
    click.echo(f"polled {len(rows)} source(s): {polls}; new items: {items}")
    for row in rows:
        if row["health"] != "ok":
            click.echo(f"  {row['health']}: {row['url']} ({row['reason']}: {row['detail']})")


def _ingest_status(as_json: bool) -> None:
    import json
    import time

    from agents.ingest.once import read_status

    settings = _settings_with_broker()
    ensure_topics(settings, replication=settings.replication_factor)
    rows = asyncio.run(read_status(settings))
    now = time.time()

    def ago(stamp: float | None) -> str:
        return "never" if not stamp else f"{now - stamp:,.0f} s ago"

    for row in rows:
        if as_json:
            click.echo(json.dumps(row))
            continue
        line = (f"{row['health']:<11} {row['url']}  last success {ago(row['last_success'])}, "
                f"{row['published']} published, {row['seen']} remembered")
        if row["health"] != "ok":
            line += (f"; failing since {ago(row['failing_since'])} ({row['failures']} polls): "
                     f"{row['reason']}: {row['detail']}")
        click.echo(line)
    if not rows and not as_json:
        click.echo("no sources on news.sources (wirewatch ingest SOURCES publishes some)")


@main.group("eval")
def evaluate() -> None:
    """Measure a stage on labelled data (replayed through the stage's own code)."""


@evaluate.command("stories")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--label", default="story_id", show_default=True,
              help="the field holding the true story / event id")
def eval_stories(path: Path, label: str) -> None:
    """Replay a labelled JSONL(.gz) file through the dedup index (in published_at order
    where there is one) and print pairwise and B-cubed precision, recall and F1."""
    from agents.dedup.evaluate import evaluate_stories

    result = evaluate_stories(path, label)
    pw, b3 = result["pairwise"], result["bcubed"]
    click.echo(f"{result['dataset']}: {result['articles']} articles, {result['gold_stories']} "
               f"true stories, {result['predicted_stories']} predicted")
    click.echo(f"  pairwise  P {pw['precision']:.3f}  R {pw['recall']:.3f}  F1 {pw['f1']:.3f}")
    click.echo(f"  B-cubed   P {b3['precision']:.3f}  R {b3['recall']:.3f}  F1 {b3['f1']:.3f}")
    click.echo(f"  {result['articles_per_second']:.0f} articles/s; verdicts {result['kinds']}")


@evaluate.command("duplicates")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def eval_duplicates(path: Path) -> None:
    """Count body duplicates caught in a JSONL(.gz) file (e.g. the BBC corpus)."""
    from agents.dedup.evaluate import evaluate_duplicates

    for key, value in evaluate_duplicates(path).items():
        click.echo(f"  {key}: {value}")


@main.command()
@click.option("--linger", type=float, default=None,
              help="seconds to keep the worker up after the demo (default: until Ctrl-C on a "
                   "terminal, 0 otherwise)")
@click.option("--timeout", type=float, default=120.0, help="give up waiting for alerts after")
@click.option("--board", "with_board", is_flag=True,
              help="also serve the desk's live page (wirewatch board) on the demo's data and "
                   "keep everything up until Ctrl-C")
def demo(linger: float | None, timeout: float, with_board: bool) -> None:
    """Start a broker and a worker, publish the sample articles, print the alerts."""
    from streams.demo import run_demo

    # SIGTERM (a service manager, `kill`) stops it as Ctrl-C does: the worker and the board
    # run in their own sessions, so only the demo's clean-up stops them.
    signal.signal(signal.SIGTERM, _interrupt)
    if with_board:
        linger = float("inf")
    elif linger is None:
        linger = float("inf") if sys.stdin.isatty() else 0.0
    try:
        raise SystemExit(run_demo(linger=linger, timeout=timeout, board=with_board))
    except WirewatchError as exc:
        raise click.ClickException(str(exc)) from None


if __name__ == "__main__":
    main()
