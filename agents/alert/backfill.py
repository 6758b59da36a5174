"""Backfill: match a newly added watch against the stories still in the dedup window.

Reads ``news.stories`` from ``now - window`` (``offsets_for_times``), matches every article
against the one new watch, and sends each hit to ``news.backfill`` keyed by story id. The
alert agent consumes that topic like ``news.stories`` (same key, same partition count, so
the same alert table), so a backfilled alert follows the live rules exactly: one per watch
and story, opened by the first hit, updated by later ones. Re-running a backfill emits
nothing new: the alert state already lists those articles.
"""

from __future__ import annotations

import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from agents.watch.match import WatchMatcher
from streams.client import topic_partitions
from streams.records import Article, Watch, decode, encode
from streams.settings import Settings
from streams.topics import bootstrap_servers, topic_name

__all__ = ["backfill", "backfill_matcher"]


def backfill_matcher(settings: Settings, watch: Watch) -> WatchMatcher:
    """A matcher for the one new watch that matches as the live one does (same settings)."""
    return WatchMatcher([watch], plurals=bool(settings.watch_plurals))


async def backfill(settings: Settings, watch: Watch, *, window_seconds: float | None = None,
                   idle_timeout: float = 1.0) -> int:
    """Send the window's articles that hit ``watch`` to news.backfill; return how many."""
    window = settings.dedup_window_hours * 3600 if window_seconds is None else window_seconds
    matcher = backfill_matcher(settings, watch)
    bootstrap = bootstrap_servers(settings)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                enable_idempotence=True, max_request_size=16 * 1024 * 1024)
    await consumer.start()
    await producer.start()
    sent = 0
    try:
        tps = await topic_partitions(consumer, topic_name(settings, "stories"))
        consumer.assign(tps)
        end = await consumer.end_offsets(tps)
        since_ms = int((time.time() - window) * 1000)
        starts = await consumer.offsets_for_times({tp: since_ms for tp in tps})
        for tp in tps:
            start = starts.get(tp)
            consumer.seek(tp, start.offset if start is not None else end[tp])
        out = topic_name(settings, "backfill")
        pending = {tp for tp in tps if await consumer.position(tp) < end[tp]}
        while pending:
            batches = await consumer.getmany(timeout_ms=int(idle_timeout * 1000))
            if not batches:
                break
            for tp, messages in batches.items():
                for msg in messages:
                    if msg.offset >= end[tp]:
                        pending.discard(tp)
                        continue
                    sent += await _send_hit(producer, out, msg.key, msg.value, matcher)
                    if msg.offset + 1 >= end[tp]:
                        pending.discard(tp)
        await producer.flush()
    finally:
        await consumer.stop()
        await producer.stop()
    return sent


async def _send_hit(producer: AIOKafkaProducer, topic: str, key: bytes | None,
                    value: bytes | None, matcher: WatchMatcher) -> int:
    if not value:
        return 0
    try:
        article = decode(Article, value)
    except Exception:  # a record that is not an Article: nothing to match
        return 0
    hits = matcher.match(article)
    if not hits:
        return 0
    article.watch_hits = hits
    await producer.send(topic, key=key or (article.story_id or article.id).encode(),
                        value=encode(article))
    return 1
