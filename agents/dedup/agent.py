"""The dedup stage's Faust agent: news.tagged (1 partition) -> news.stories (keyed by story).

Articles are taken in micro-batches (``WIREWATCH_DEDUP_BATCH_MAX``, waiting at most
``WIREWATCH_DEDUP_BATCH_WAIT_MS`` to fill one) so their features are computed together.
The index lives in memory for speed; every change to it is written to a Faust table whose
changelog topic survives a restart. After a (re)assignment the table is recovered by Faust
and the index is rebuilt from it before the next article is judged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from faust.streams import Stream
from faust.types import EventT

from agents.dedup import DedupIndex
from agents.dedup.index import Prepared, prepare
from streams.app import app, settings, topics
from streams.metrics import METRICS
from streams.records import Article, decode
from streams.stage import event_fields, guarded, send, where

__all__ = ["dedup_agent"]

log = logging.getLogger("wirewatch.dedup")
EVICT_EVERY_SECONDS = 30.0


def _new_index() -> DedupIndex:
    return DedupIndex(window_seconds=settings.dedup_window_hours * 3600,
                      max_articles=settings.dedup_max_articles)


class _State:
    index = _new_index()
    stale = True  # rebuild from the table before the next article
    last_evict = 0.0


async def _on_recovered() -> None:
    _State.stale = True


# use_partitioner: the writes of a batch happen after Faust's per-event context is gone, so
# the producer picks the changelog partition; with one partition it is always 0.
state_table = app.Table("dedup-state", default=None, key_type=bytes, value_type=bytes,
                        partitions=1, on_recover=_on_recovered, use_partitioner=True)


def _rebuild() -> None:
    index = _new_index()
    for key, value in state_table.items():
        index.restore(key.decode("utf-8"), value)
    _State.index, _State.stale = index, False
    log.info("dedup index rebuilt from its table: %d articles", len(index))


def _persist(changes: list[tuple[str, bytes | None]]) -> None:
    for key, value in changes:
        if value is None:
            state_table.pop(key.encode("utf-8"), None)
        else:
            state_table[key.encode("utf-8")] = value


@app.agent(topics["tagged"])  # type: ignore[arg-type]  # take_events is on Stream only
async def dedup_agent(stream: Stream) -> None:
    # Micro-batches: the articles' features are computed with numpy for the whole batch
    # (about half their cost one by one); each article is then judged in order. Faust acks
    # a batch's events once it is handled, so a crash redelivers them (see ``observe``).
    async for events in stream.take_events(settings.dedup_batch_max,
                                           within=settings.dedup_batch_wait_ms / 1000):
        await _handle(events)


async def _handle(events: Sequence[EventT]) -> None:
    decoded: list[Article | Exception] = []
    for event in events:
        try:
            decoded.append(decode(Article, event.value or b""))
        except Exception as exc:  # re-raised below, inside its event's guard
            decoded.append(exc)
    articles = [a for a in decoded if isinstance(a, Article)]
    try:
        prepared: list[Prepared | None] = list(prepare(articles))
    except Exception:  # a bug on one article must not cost the batch: one by one instead
        log.exception("dedup: batch preparation failed; preparing one by one")
        prepared = [None] * len(articles)
    features = iter(prepared)
    for event, item in zip(events, decoded, strict=True):
        async with guarded("dedup", event):
            if isinstance(item, Exception):
                raise item
            await _judge(event, item, next(features))


async def _judge(event: EventT, article: Article, prepared: Prepared | None) -> None:
    if _State.stale:
        _rebuild()
    now = time.time()
    verdict = _State.index.observe(article, now, offset=event.message.offset, prepared=prepared)
    _persist(verdict.changes)
    # Every 30 s for the time window; at once when the size cap is passed.
    if (now - _State.last_evict > EVICT_EVERY_SECONDS
            or len(_State.index) > settings.dedup_max_articles):
        _persist(_State.index.evict(now))
        _State.last_evict = now
    METRICS.dedup_window_articles.set(len(_State.index))
    METRICS.dedup_stories.set(_State.index.story_count)
    if verdict.kind == "exact_duplicate":
        METRICS.duplicates.labels("exact").inc()
        METRICS.articles.labels("dedup", "dropped").inc()
        log.info("exact duplicate %s of %s dropped at %s", article.id,
                 verdict.duplicate_of, where(event),
                 extra=event_fields("dedup", event, article_id=article.id))
        return
    if verdict.kind == "near_duplicate":
        METRICS.duplicates.labels("near").inc()
    elif verdict.kind == "redelivery":
        # Same message after a crash: its first send may be lost, so send it again
        # with the same ids; downstream (alert) ignores an article it has seen.
        log.info("redelivered %s re-emitted at %s", article.id, where(event),
                 extra=event_fields("dedup", event, article_id=article.id))
    article.story_id = verdict.story_id
    article.duplicate_of = verdict.duplicate_of
    article.story = verdict.story
    article.stage_times["dedup"] = time.time()
    await send(topics["stories"], verdict.story_id, article)
    METRICS.articles.labels("dedup", "emitted").inc()
