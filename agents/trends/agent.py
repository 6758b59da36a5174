"""The trends stage's Faust agent: news.tagged (entities) -> news.trends (keyed by entity),
and ``trend`` alerts for watches that ask for them (``trend_alerts``).

news.tagged has one partition, so one worker counts every entity (``TrendCounter``). Every
``EMIT_SECONDS`` of event time it publishes the window's trending entities; an entity that
starts trending (it was not in the previous window's list) raises one ``trend`` alert for
each watch with ``trend_alerts`` whose query matches an article naming it (``entity:``
queries, matched by the same matcher as articles).

State: the table ``trend-state`` holds one record per tracked entity (its hourly counts),
one per hour's count-min sketch, and a ``meta`` record (first hour, next window, the
running trends). It is written every ``SAVE_SECONDS`` by a timer, only what changed, with
the producer's partitioner (one partition). A crash loses at most those seconds of counts,
and the messages after the last commit are counted again: trends are estimates either way.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from faust.types import StreamT

from agents.signals.priority import priority_of
from agents.trends.core import HOUR, MIN_SCORE, Trend, TrendCounter, entity_key
from agents.watch.feed import registry, watches_loaded
from streams.app import app, stage_input, topics
from streams.metrics import METRICS
from streams.records import Alert, Article, Entity, Signal, TrendRecord, decode, encode, stable_id
from streams.stage import guarded, outcome

__all__ = ["trends_agent"]

log = logging.getLogger("wirewatch.trends")

EMIT_SECONDS = 300.0
SAVE_SECONDS = 30.0

trend_table = app.Table("trend-state", default=None, key_type=bytes, value_type=bytes,
                        partitions=1, use_partitioner=True)


class _State:
    counter: TrendCounter | None = None
    next_emit: float = 0.0
    running: dict[str, float] = {}  # key -> window end its run of trending windows began
    dirty: set[str] = set()
    sketch_hours: set[int] = set()  # hours whose sketch changed since the last save


def _restore() -> TrendCounter:
    counter = TrendCounter()
    for key, value in trend_table.items():
        if not value:
            continue
        name = key.decode("utf-8")
        if name == "meta":
            meta = orjson.loads(value)
            counter.first_hour, counter.newest = int(meta["first"]), float(meta["newest"])
            _State.next_emit = float(meta["next_emit"])
            _State.running = {str(k): float(v) for k, v in meta["running"].items()}
        elif name.startswith("s:"):
            counter.load_sketch(int(name[2:]), value)
        elif name.startswith("e:"):
            data = orjson.loads(value)
            counter.tracked[name[2:]] = {int(h): int(n) for h, n in data["h"].items()}
            counter.names[name[2:]] = (str(data["n"]), str(data["k"]))
    log.info("trends: restored %d tracked entities and %d hourly sketches",
             len(counter.tracked), len(counter.sketches))
    return counter


def _counter() -> TrendCounter:
    if _State.counter is None:
        _State.counter = _restore()
    return _State.counter


@app.on_rebalance_complete.connect
async def _rebalanced(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
    _State.counter = None  # read the table again: it may have moved here from elsewhere


def _trend_alert(trend: Trend, since: float, watch_id: str, watch_name: str,
                 floor: str | None, t: float, now: float) -> Alert:
    priority = priority_of(None, t, trend=True, floor=floor)
    detail = (f"{trend.mentions_1h:g} mentions in the last hour against {trend.baseline_per_hour:g}"
              f" an hour over {trend.baseline_hours} h; score {trend.score:g}")
    return Alert(alert_id=stable_id("trend", watch_id, trend.key, str(int(since))),
                 kind="trend", revision=1, watch_id=watch_id, watch_name=watch_name,
                 story_id="", article_id=f"trend:{trend.key}:{int(since)}",
                 title=f"{trend.name} is trending", url=None, source=None, published_at=None,
                 sources=[], article_ids=[], terms=[trend.name], matches=[], opened_at=since,
                 updated_at=now, received_at=t, priority=priority.level,
                 priority_reason=priority.reason,
                 signal=Signal("trend", "1h", trend.mentions_1h, trend.baseline_per_hour,
                               MIN_SCORE, detail))


async def _emit(window_end: float) -> None:
    counter = _counter()
    found = counter.trends(window_end)
    running = {t.key: _State.running.get(t.key, window_end) for t in found}
    now = time.time()
    for rank, trend in enumerate(found, start=1):
        record = TrendRecord(
            trend_id=stable_id("trend", trend.key, str(int(window_end))), key=trend.key,
            name=trend.name, kind=trend.kind, window_end=window_end,
            mentions_1h=trend.mentions_1h, baseline_per_hour=trend.baseline_per_hour,
            baseline_hours=trend.baseline_hours, score=trend.score, rank=rank,
            trending_since=running[trend.key])
        await topics["trends"].send(key=trend.key.encode("utf-8"), value=encode(record))
        if trend.key not in _State.running:
            await _alert_watches(trend, window_end, now)
    _State.running = running
    _State.dirty.add("meta")


async def _alert_watches(trend: Trend, since: float, now: float) -> None:
    probe = Article(id=f"trend:{trend.key}", title="", text="",
                    entities=[Entity(trend.name, trend.kind)])
    for hit in registry.matcher.match(probe):
        watch = registry.get(hit.watch_id)
        if watch is None or not watch.trend_alerts:
            continue
        alert = _trend_alert(trend, since, watch.id, watch.name, watch.priority, since, now)
        key = watch.id.encode("utf-8")
        await topics["alerts"].send(key=key, value=encode(alert))
        if watch.webhook_url and watch.live:
            await topics["deliveries"].send(key=key, value=encode(alert))
        METRICS.alerts.labels("trend").inc()
        log.info("trend alert for watch %r: %s", watch.name, alert.title,
                 extra={"alert_id": alert.alert_id, "watch_id": watch.id})


@app.agent(stage_input("trends"))
async def trends_agent(stream: StreamT) -> None:
    async for event in stream.events():
        await watches_loaded()
        async with guarded("trends", event):
            article = decode(Article, event.value or b"")
            counter = _counter()
            t = article.received_at or time.time()
            if _State.next_emit and t >= _State.next_emit:
                await _emit(_State.next_emit)
            if not _State.next_emit or t >= _State.next_emit:
                _State.next_emit = (t // EMIT_SECONDS + 1) * EMIT_SECONDS
            entities = [(e.name, e.kind) for e in article.entities]
            if entities:
                counter.add(t, entities)
                _State.dirty.update(f"e:{entity_key(kind, name)}" for name, kind in entities)
                _State.dirty.update(f"e:{key}" for key in counter.drain_dropped())
                _State.sketch_hours.add(int(t // HOUR))
            _State.dirty.add("meta")
            outcome("trends", "emitted" if entities else "dropped").inc()


@app.timer(SAVE_SECONDS)
async def save_trends() -> None:
    """Write what changed: tracked entities (a tombstone for the dropped), sketches, meta."""
    counter = _State.counter
    if counter is None or not (_State.dirty or _State.sketch_hours):
        return
    dirty, _State.dirty = _State.dirty, set()
    hours, _State.sketch_hours = _State.sketch_hours, set()
    for name in sorted(dirty):
        if name == "meta":
            continue
        key = name[2:]
        counts = counter.tracked.get(key)
        if counts is None:
            if trend_table.get(name.encode()) is not None:
                del trend_table[name.encode()]
            continue
        entity_name, kind = counter.names.get(key, (key, ""))
        trend_table[name.encode()] = orjson.dumps(
            {"h": {str(h): n for h, n in counts.items()}, "n": entity_name, "k": kind})
    for hour in sorted(hours):
        data = counter.sketch_bytes(hour)
        if data is not None:
            trend_table[f"s:{hour}".encode()] = data
    for stale in [k for k in trend_table if k.startswith(b"s:") and
                  int(k[2:]) not in counter.sketches]:
        del trend_table[stale]
    trend_table[b"meta"] = orjson.dumps({
        "first": counter.first_hour, "newest": counter.newest, "next_emit": _State.next_emit,
        "running": _State.running})
