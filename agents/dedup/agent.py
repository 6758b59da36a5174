"""The dedup stage's Faust agent: news.tagged (1 partition) -> news.stories (keyed by story).

Articles are taken in micro-batches (``WIREWATCH_DEDUP_BATCH_MAX``, waiting at most
``WIREWATCH_DEDUP_BATCH_WAIT_MS`` to fill one) so their features are computed together.
The index lives in memory for speed; every change to it is written to a Faust table whose
changelog topic survives a restart. After a (re)assignment the table is recovered by Faust
and the index is rebuilt from it before the next article is judged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any

from faust.streams import Stream
from faust.types import EventT

from agents.dedup import DedupIndex
from agents.dedup.index import Change, Prepared, prepare
from streams.app import app, settings, stage_input, topics
from streams.metrics import METRICS
from streams.records import Article, decode, encode
from streams.stage import event_fields, guarded, where

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
    orphans = index.drop_orphans()
    if orphans:
        _persist([(f"a:{article_id}", None) for article_id in orphans])  # bounded table
        log.warning("dedup: %d article(s) in the state had no story (a crash between the two "
                    "writes) and are forgotten: %s", len(orphans), orphans[:5])
    _State.index, _State.stale = index, False
    log.info("dedup index rebuilt from its table: %d articles", len(index))


def _persist(changes: list[tuple[str, bytes | None]]) -> None:
    for key, value in changes:
        if value is None:
            state_table.pop(key.encode("utf-8"), None)
        else:
            state_table[key.encode("utf-8")] = value


@app.agent(stage_input("dedup"))  # type: ignore[arg-type]  # take_events is on Stream only
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
    sent: list[_Sent] = []
    for event, item in zip(events, decoded, strict=True):
        async with guarded("dedup", event):
            if isinstance(item, Exception):
                raise item
            sent.append(await _judge(event, item, next(features)))
    await _persist_acknowledged(sent)


@dataclass(slots=True)
class _Sent:
    """An article's state writes, held until its record on news.stories is acknowledged."""

    article_id: str
    changes: list[Change]
    delivery: Awaitable[Any] | None  # None: nothing was sent (a duplicate dropped)


async def _persist_acknowledged(sent: list[_Sent]) -> None:
    """Write the batch's state once the broker has its records, in the order judged.

    Why wait: an article in the state is taken for already sent, so after a crash its
    redelivery is dropped as a repeat. Written before the ack, a crash in between would
    lose the article; written after, a crash in between only sends it twice. One round trip
    per batch, not per article. An article whose send failed keeps no state, so its
    redelivery is judged and sent again."""
    deliveries = [item.delivery for item in sent if item.delivery is not None]
    results = await asyncio.gather(*deliveries, return_exceptions=True)
    failed = iter(isinstance(result, BaseException) for result in results)
    for item in sent:
        if item.delivery is not None and next(failed):
            log.error("dedup: %s was not acknowledged by the broker; its state is not kept",
                      item.article_id, extra={"stage": "dedup", "article_id": item.article_id})
            continue
        _persist(item.changes)


async def _judge(event: EventT, article: Article, prepared: Prepared | None) -> _Sent:
    if _State.stale:
        _rebuild()
    now = time.time()
    verdict = _State.index.observe(article, now, prepared=prepared)
    changes = list(verdict.changes)
    # Every 30 s for the time window; at once when the size cap is passed.
    if (now - _State.last_evict > EVICT_EVERY_SECONDS
            or len(_State.index) > settings.dedup_max_articles):
        changes.extend(_State.index.evict(now))
        _State.last_evict = now
    METRICS.dedup_window_articles.set(len(_State.index))
    METRICS.dedup_stories.set(_State.index.story_count)
    if verdict.kind in ("exact_duplicate", "repeat"):
        if verdict.kind == "exact_duplicate":
            METRICS.duplicates.labels("exact").inc()
        else:  # not a duplicate of another article: the same one again
            METRICS.repeated_articles.inc()
        METRICS.articles.labels("dedup", "dropped").inc()
        log.info("%s %s of %s dropped at %s", verdict.kind.replace("_", " "), article.id,
                 verdict.duplicate_of, where(event),
                 extra=event_fields("dedup", event, article_id=article.id))
        return _Sent(article.id, changes, None)
    if verdict.kind == "near_duplicate":
        METRICS.duplicates.labels("near").inc()
    article.story_id = verdict.story_id
    article.duplicate_of = verdict.duplicate_of
    article.story = verdict.story
    article.stage_times["dedup"] = time.time()
    delivery = await topics["stories"].send(key=verdict.story_id.encode("utf-8"),
                                            value=encode(article))
    METRICS.articles.labels("dedup", "emitted").inc()
    return _Sent(article.id, changes, delivery)
