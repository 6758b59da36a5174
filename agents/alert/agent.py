"""The alert stage's Faust agent: news.stories (keyed by story) -> news.alerts (keyed by watch).

An alert of a watch with a webhook also goes to news.deliveries, which the webhook agent
reads (``publish``).

Alert state is a table keyed by story id, the key of the input topic, so it is co-partitioned
with it. Entries older than the alert window are evicted, only ever from the partition of the
event in hand, so each tombstone lands in the changelog partition that holds the key.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable, Container
from typing import Any

import orjson
from faust.types import EventT, StreamT

from agents.alert.core import AlertState, decide, story_is_full
from agents.alert.expiry import OpenAlerts
from agents.alert.ratelimit import RateLimiter
from agents.alert.recovery import sent_recently
from agents.signals.surge import StreamPace
from agents.watch.feed import registry, watches_loaded
from agents.watch.match import Evidence
from agents.watch.registry import WatchRegistry
from streams.app import app, settings, stage_input, topics
from streams.metrics import METRICS
from streams.records import Alert, Article, Watch, decode, encode
from streams.stage import event_fields, guarded, outcome, where
from streams.topics import TOPICS

__all__ = ["alert_agent"]

log = logging.getLogger("wirewatch.alert")
EVICT_EVERY_SECONDS = 30.0

alert_table = app.Table("alert-state", default=None, key_type=bytes, value_type=bytes,
                        partitions=TOPICS["stories"].partitions)
# The stream's normal pace of new sources per story (agents/signals/surge.py), one entry per
# partition ("pace:<p>"), written from that partition's events so it restores with it.
signal_table = app.Table("alert-signals", default=None, key_type=bytes, value_type=bytes,
                         partitions=TOPICS["stories"].partitions)
PACE_SAVE_EVERY = 20  # samples; a restart loses at most these of a slow average
open_alerts = OpenAlerts()  # what eviction needs of the table, without decoding it
_last_evict: dict[int, float] = {}


def _load(raw: bytes | None) -> dict[str, AlertState]:
    if not raw:
        return {}
    data: dict[str, Any] = orjson.loads(raw)
    return {wid: AlertState(**s) for wid, s in data["states"].items()}


def _dump(states: dict[str, AlertState], partition: int, now: float) -> bytes:
    # orjson writes dataclasses itself, the same bytes as via dataclasses.asdict (a deep copy
    # of every list, ~25x slower here).
    return orjson.dumps({"p": partition, "t": now, "states": states})


def _evict(event: EventT, now: float) -> None:
    partition = event.message.partition
    if now - _last_evict.get(partition, 0.0) < EVICT_EVERY_SECONDS:
        return
    _last_evict[partition] = now
    if open_alerts.stale or len(open_alerts) != len(alert_table):
        open_alerts.rebuild(_entries())
    horizon = now - settings.alert_window_hours * 3600
    overflow = max(0, len(alert_table) - settings.alert_max_open)
    for key in open_alerts.due(partition, horizon, overflow):
        del alert_table[key]
    METRICS.open_alerts.set(len(alert_table))


class _Recent:
    """Alerts sent in the recovery window before the last rebalance (``recovery``)."""

    sent: Container[tuple[str, str]] = frozenset()
    stale = True  # read them back before the next event is judged


class _Paces:
    """Each partition's ``StreamPace``, read from ``signal_table`` on first use."""

    by_partition: dict[int, StreamPace] = {}

    @classmethod
    def get(cls, partition: int) -> StreamPace:
        pace = cls.by_partition.get(partition)
        if pace is None:
            raw = signal_table.get(f"pace:{partition}".encode())
            pace = StreamPace.from_dict(orjson.loads(raw) if raw else None)
            cls.by_partition[partition] = pace
        return pace

    @classmethod
    def observe(cls, partition: int, article: Article) -> None:
        if article.story is None or not article.watch_hits:
            return
        pace = cls.get(partition)
        pace.observe(article.story.new_sources_15m)
        if pace.samples % PACE_SAVE_EVERY == 1:
            signal_table[f"pace:{partition}".encode()] = orjson.dumps(pace.to_dict())


@app.on_rebalance_complete.connect
async def _table_restored(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
    open_alerts.stale = True
    _Recent.stale = True
    _Paces.by_partition = {}


async def _recall_sent() -> None:
    if not _Recent.stale:
        return
    _Recent.stale = False
    started = time.monotonic()
    _Recent.sent = await sent_recently(settings,
                                       window_seconds=settings.alert_recovery_seconds)
    log.info("read back %d alert(s) sent in the last %.0f s in %.1f s", len(_Recent.sent),
             settings.alert_recovery_seconds, time.monotonic() - started)


def _entries() -> list[tuple[bytes, int, float]]:
    entries = []
    for key, raw in alert_table.items():
        meta = orjson.loads(raw)
        entries.append((key, meta["p"], meta["t"]))
    return entries


async def publish(watch_id: str, alert: bytes, to_webhook: bool) -> None:
    """An alert to news.alerts, and to news.deliveries too when its watch has a webhook."""
    key = watch_id.encode("utf-8")
    await topics["alerts"].send(key=key, value=alert)
    if to_webhook:
        await topics["deliveries"].send(key=key, value=alert)


limiter = RateLimiter(window=settings.alert_rate_window_seconds,
                      default_limit=settings.alert_rate_limit)

# Alerts sent since the last INFO line about them, by kind ("opened", "updated"). Each alert
# is logged at DEBUG only: Faust's colour formatter took ~300 µs a line (a third of this
# stage's CPU), and the alerts themselves are on news.alerts.
_sent: dict[str, int] = {"opened": 0, "updated": 0}
# The wirewatch_alerts_total series per kind, looked up once rather than per alert.
_alerts_total = {kind: METRICS.alerts.labels(kind) for kind in ("opened", "updated", "suppressed")}
SENT_LOG_SECONDS = 5.0


@app.timer(SENT_LOG_SECONDS)
async def send_summaries() -> None:
    """Fold each burst the rate limit held back into one summary alert; log what was sent."""
    if _sent["opened"] or _sent["updated"]:
        log.info("sent %d alert(s) in %.0f s: %d opened, %d updated",
                 _sent["opened"] + _sent["updated"], SENT_LOG_SECONDS, _sent["opened"],
                 _sent["updated"])
        _sent["opened"] = _sent["updated"] = 0
    for summary in limiter.due_summaries(time.time()):
        watch = registry.get(summary.watch_id)
        await publish(summary.watch_id, encode(summary), bool(watch and watch.webhook_url))
        METRICS.alerts.labels("summary").inc()
        log.info("summary of %d held alert(s) for watch %s", summary.held_alerts,
                 summary.watch_id, extra={"alert_id": summary.alert_id,
                                          "watch_id": summary.watch_id})


# Live stories and backfilled hits (agents/alert/backfill.py) go through the same logic.
stories_and_backfill = stage_input("alert")


async def alert_on(article: Article, states: dict[str, AlertState], now: float, *,
                   watches: WatchRegistry, limits: RateLimiter,
                   send: Callable[[Watch, Alert], Awaitable[None]],
                   already_sent: Container[tuple[str, str]] = frozenset(),
                   stream_rate: float = 0.0) -> int:
    """Decide each hit's alert, send it, then record its watch's new state in ``states``, in
    that order, one watch at a time; returns how many states changed. The caller saves
    ``states`` even when this raises: a send that fails leaves the watches before it
    recorded (their alerts went out, and a redelivery must not send them again) and its own
    watch and those after it undecided (a redelivery sends them). Before, states were kept
    aside and saved only after every send, so one failed send made the earlier watches'
    alerts go out again: the same (alert_id, revision) twice. An alert in ``already_sent``
    (alert id, article id) went out before a crash that lost its state: recorded, not sent
    (``recovery``). A ``flash`` alert is never held by the rate limit, nor counted by it.
    ``stream_rate``: the stream's normal pace of new sources (``StreamPace``)."""
    changed = 0
    evidence: Evidence | None = None  # where the article matched, made on first need
    full = story_is_full(states.values())
    for hit in article.watch_hits:
        watch = watches.get(hit.watch_id)
        if watch is None:
            continue  # removed after tagging
        result = decide(states.get(hit.watch_id), article, hit, now, story_full=full,
                        floor=watch.priority, stream_rate=stream_rate)
        if result is None:
            continue
        state, alert = result
        if alert.priority != "flash" and not limits.admit(hit.watch_id, now, watch.rate_limit):
            limits.hold(alert, now)  # state moves on; the summary reports it
            _alerts_total["suppressed"].inc()
        elif (alert.alert_id, alert.article_id) in already_sent:
            log.info("alert %s r%d went out before a restart; not sent again", alert.alert_id,
                     alert.revision, extra={"alert_id": alert.alert_id,
                                            "watch_id": alert.watch_id})
        else:
            if evidence is None:
                evidence = watches.matcher.evidence(article)
            alert.matches = evidence.matches(hit.watch_id)
            await send(watch, alert)
        states[hit.watch_id] = state
        changed += 1
    return changed


async def _send_alert(watch: Watch, alert: Alert, event: EventT) -> None:
    # A digest-only watch (live off) keeps its alerts on news.alerts, the record the signals
    # stage builds its digests from, but its webhook gets only the digests.
    await publish(watch.id, encode(alert), bool(watch.webhook_url) and watch.live)
    kind = "opened" if alert.kind == "opened" else "updated"
    _alerts_total[kind].inc()
    METRICS.end_to_end_seconds.observe(max(0.0, alert.updated_at - alert.received_at))
    _sent[kind] += 1
    if log.isEnabledFor(logging.DEBUG):  # skip building the fields when off
        log.debug("alert %s %s (watch %r, story %s) at %s", alert.alert_id, alert.kind,
                  alert.watch_name, alert.story_id, where(event),
                  extra=event_fields("alert", event, alert_id=alert.alert_id,
                                     watch_id=alert.watch_id, story_id=alert.story_id))


@app.agent(stories_and_backfill)
async def alert_agent(stream: StreamT) -> None:
    async for event in stream.events():
        await watches_loaded()
        await _recall_sent()
        async with guarded("alert", event):
            article = decode(Article, event.value or b"")
            key = event.key or (article.story_id or article.id).encode("utf-8")
            now = time.time()
            states = _load(alert_table.get(key))
            before = dict(states)
            partition = event.message.partition
            try:
                await alert_on(article, states, now, watches=registry, limits=limiter,
                               send=functools.partial(_send_alert, event=event),
                               already_sent=_Recent.sent,
                               stream_rate=_Paces.get(partition).rate)
            finally:
                # Also when a send failed: what went out before it is recorded.
                changed = _changed(before, states)
                if changed:
                    _save(key, states, partition, now)
                    _Paces.observe(partition, article)
            outcome("alert", "emitted" if changed else "dropped").inc()
            _evict(event, now)


def _changed(before: dict[str, AlertState], after: dict[str, AlertState]) -> bool:
    # decide() makes a new AlertState for every change, so identity tells.
    return len(after) != len(before) or any(after[k] is not before.get(k) for k in after)


def _save(key: bytes, states: dict[str, AlertState], partition: int, now: float) -> None:
    alert_table[key] = _dump(states, partition, now)
    open_alerts.touch(key, partition, now)
    METRICS.open_alerts.set(len(alert_table))
