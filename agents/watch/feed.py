"""Keeps this worker's ``WatchRegistry`` in step with the compacted ``news.watches`` topic.

Every worker needs every watch, so this is not a group consumer: it reads all of the topic
from the beginning, then follows it. Stages that match or alert call ``watches_loaded()``
before each event (true once the topic is read up to its end at start-up), so no article is
judged against a partial set.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from agents.watch.definitions import check_watch, load_watch_file
from agents.watch.registry import WatchRegistry
from streams.app import app, settings
from streams.client import from_the_start
from streams.errors import BadRecord, WatchError
from streams.metrics import METRICS
from streams.records import Watch, decode
from streams.topics import bootstrap_servers, topic_name

__all__ = ["ready", "registry", "watches_loaded"]

log = logging.getLogger("wirewatch.watches")

registry = WatchRegistry(load_watch_file(Path(settings.watches_file)) if settings.watches_file
                         else (), plurals=bool(settings.watch_plurals))
ready = asyncio.Event()
METRICS.watches.set(len(registry))


async def watches_loaded() -> None:
    """Wait until the watch list is read up to its end (instant once it is).

    Agents call this per event, *inside* their ``async for``: an agent that awaits before it
    starts iterating its stream can miss the events Faust hands it meanwhile, and then
    stalls for good (seen after a restart, when redelivered messages arrive at once)."""
    if not ready.is_set():
        await ready.wait()


def _upgraded(watch: Watch) -> Watch:
    """Before validation was shared (issue 16), ``watch add --rate-limit 0`` stored 0 to
    mean "the default"; such records stay valid rather than vanish on upgrade."""
    if watch.rate_limit == 0 and type(watch.rate_limit) is int:
        return dataclasses.replace(watch, rate_limit=None)
    return watch


def _stage(key: bytes | None, value: bytes | None, where: str) -> None:
    """Record one change; the matcher is rebuilt once per batch, off the event loop."""
    if key is None:
        log.warning("watch without a key at %s ignored", where)
        return
    watch_id = key.decode("utf-8", "replace")
    try:
        watch = None if value is None else decode(Watch, value)
        if watch is not None:
            watch = _upgraded(watch)
            # Any producer may write here: every field, every type (parsed as stage will).
            check_watch(watch, plurals=registry.plurals)
        registry.stage(watch_id, watch)
    except (BadRecord, WatchError) as exc:
        log.warning("invalid watch %s at %s ignored: %s", watch_id, where, exc)
        return
    METRICS.watches.set(len(registry))
    log.info("watch %s %s at %s (%d loaded)", watch_id, "removed" if value is None else "set",
             where, len(registry))


async def _caught_up(consumer: AIOKafkaConsumer, end: dict[TopicPartition, int]) -> bool:
    for tp, offset in end.items():
        if await consumer.position(tp) < offset:
            return False
    return True


async def _follow_once(topic: str) -> None:
    async with from_the_start(bootstrap_servers(settings), topic) as (consumer, end):
        while True:
            batches = await consumer.getmany(timeout_ms=200)
            for tp, messages in batches.items():
                for msg in messages:
                    _stage(msg.key, msg.value, f"{tp.topic}[{tp.partition}]@{msg.offset}")
            if batches:
                # 100,000 watches take about a second to compile: never on the loop thread.
                await registry.rebuild_async()
            if not ready.is_set() and await _caught_up(consumer, end):
                ready.set()
                log.info("watches ready: %d loaded", len(registry))


@app.task
async def follow_watches() -> None:
    """Follow news.watches for the life of the worker; a broker hiccup is retried, never
    fatal (an exception escaping a Faust task would crash the whole worker)."""
    topic = topic_name(settings, "watches")
    delay = 0.5
    while True:
        try:
            await _follow_once(topic)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("following %s failed; retrying in %.1fs", topic, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
