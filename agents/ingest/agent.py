"""The ingest stage's Faust side: news.sources -> (the web) -> news.raw.

The agent reads ``news.sources`` in the workers' consumer group, so the group splits the
sources by partition among the workers. Each worker's ``IngestManager``
(``agents/ingest/runner.py``) polls the sources of the partitions it holds, and hears of
every rebalance here: on revocation it stops those polls (waiting for the ones in flight, so
the next owner reads their state), on assignment it reads the new partitions' sources and
state (``news.ingest-state``, same partitions) before polling them. Records arriving live on
``news.sources`` (``wirewatch ingest``, another worker's start-up) are applied as they come.

A worker with ``WIREWATCH_INGEST_SOURCES_FILE`` set publishes that list (and removes the
sources it does not name) when it starts. ``GET /ingest/`` on the worker's web port shows
the sources it polls, with their health.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

import faust
from faust.types import TP, StreamT

from agents.ingest.config import fetch_config, ingest_config
from agents.ingest.fetch import Fetcher
from agents.ingest.observe import MetricsObserver, observe_fetch
from agents.ingest.poll import Poller
from agents.ingest.runner import IngestManager
from agents.ingest.sources import SourcesError, load_sources
from agents.ingest.store import load_partitions, sync_sources
from streams.app import app, settings, stage_input, topics
from streams.metrics import METRICS
from streams.stage import guarded
from streams.topics import bootstrap_servers, topic_name

__all__ = ["ingest_agent", "manager"]

log = logging.getLogger("wirewatch.ingest")

SOURCES_TOPIC = topic_name(settings, "sources")
STATE_TOPIC = topic_name(settings, "ingest_state")
CONFIG = ingest_config(settings)


class _FaustPublisher:
    """Writes through the worker's own (idempotent) producer, waiting for the acks."""

    async def publish(self, messages: list[tuple[bytes, bytes]]) -> None:
        futures = [await topics["raw"].send(key=key, value=value) for key, value in messages]
        await asyncio.gather(*futures)

    async def save(self, partition: int, key: bytes, value: bytes | None) -> None:
        future = await topics["ingest_state"].send(key=key, value=value, partition=partition)
        await future


fetcher = Fetcher(fetch_config(settings), observe=observe_fetch)
manager = IngestManager(
    Poller(fetcher, CONFIG, MetricsObserver()), _FaustPublisher(),
    functools.partial(load_partitions, bootstrap_servers(settings), SOURCES_TOPIC, STATE_TOPIC),
    concurrency=settings.ingest_concurrency)


def _sources_partitions(tps: Any) -> set[int]:
    return {tp.partition for tp in tps if tp.topic == SOURCES_TOPIC}


@app.agent(stage_input("ingest"))
async def ingest_agent(stream: StreamT) -> None:
    async for event in stream.events():
        async with guarded("ingest", event):
            msg = event.message
            await manager.apply_record(msg.partition, msg.offset, msg.key, event.value)


@app.on_partitions_revoked.connect
async def _revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
    revoked: set[TP] = args[0] if args else kwargs.get("revoked", set())
    await manager.revoke(_sources_partitions(revoked))


@app.on_partitions_assigned.connect
async def _assigned(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
    assigned: set[TP] = args[0] if args else kwargs.get("assigned", set())
    await manager.assign(_sources_partitions(assigned))


async def _publish_sources_file(path: str) -> None:
    try:
        sources = load_sources(path, min_interval=settings.ingest_min_interval_seconds)
    except SourcesError as exc:
        log.error("ingest: WIREWATCH_INGEST_SOURCES_FILE not used: %s", exc)
        return
    delay = 0.5
    for _attempt in range(8):
        try:
            result = await sync_sources(bootstrap_servers(settings), SOURCES_TOPIC, STATE_TOPIC,
                                        sources)
            log.info("ingest: %s: %d source(s) added, %d changed, %d removed, %d unchanged",
                     path, result.added, result.changed, result.removed, result.unchanged)
            return
        except Exception as exc:
            log.warning("ingest: publishing %s failed (%s); retrying in %.1f s", path, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


@app.task
async def run_ingest() -> None:
    """Poll the sources of this worker's partitions for the life of the worker."""
    if settings.ingest_sources_file:
        await _publish_sources_file(settings.ingest_sources_file)
    try:
        await manager.run()
    finally:
        await fetcher.close()


@app.timer(5.0)
async def ingest_gauges() -> None:
    counts, oldest = manager.health_counts(CONFIG.failing_after)
    for state, count in counts.items():
        METRICS.ingest_sources.labels(state).set(count)
    METRICS.ingest_oldest_success_age.set(oldest)


@app.page("/ingest/")  # type: ignore[arg-type]  # faust's stubs want a View
async def ingest_status(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
    """The sources this worker polls, their health and schedule."""
    counts, oldest = manager.health_counts(CONFIG.failing_after)
    return web.json({"partitions": sorted(manager.owned), "health": counts,
                     "oldest_success_age_seconds": oldest,
                     "sources": manager.status(CONFIG.failing_after)})
