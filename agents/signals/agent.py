"""The signals stage's Faust agent: news.alerts (keyed by watch) -> each watch's spikes and
digests, back on news.alerts (and news.deliveries for a watch with a webhook).

It reads every watch's live alerts, which is every article that hit the watch, counted by
the alert stage once (redeliveries make no alert). Its own spike and digest records come
back on the same topic and are skipped. State is one table record per watch (its
``SpikeState`` and open ``DigestState``), written with the producer's partitioner: the key is
the watch id, as on news.alerts, so each record's changelog partition is its watch's
partition, from the agent and from the timer that closes digests alike.

At-least-once: a spike or digest is sent, then its state is saved. A worker killed between
the two sends it again on redelivery, with the same ``(alert_id, revision)``; after each
rebalance the agent reads back what went out in the recovery window (``recovery``), as the
alert stage does, and does not send those again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from faust.types import StreamT

from agents.alert.recovery import sent_recently
from agents.signals.digest import DigestState, digest_alert, period_of
from agents.signals.spike import SpikeState, hits_of, spike_alert
from agents.watch.feed import registry, watches_loaded
from streams.app import app, settings, stage_input, topics
from streams.metrics import METRICS
from streams.records import Alert, Watch, decode, encode
from streams.stage import guarded, outcome
from streams.topics import TOPICS

__all__ = ["signals_agent"]

log = logging.getLogger("wirewatch.signals")

LIVE_KINDS = frozenset({"opened", "update", "surge"})
OWN_KINDS = frozenset({"spike", "digest", "trend"})  # its own, and the trends stage's
CLOSE_EVERY_SECONDS = 10.0

signal_table = app.Table("signal-state", default=None, key_type=bytes, value_type=bytes,
                         partitions=TOPICS["alerts"].partitions, use_partitioner=True)


@dataclass(slots=True)
class WatchSignals:
    partition: int
    spike: SpikeState = field(default_factory=SpikeState)
    digest: DigestState | None = None

    def dump(self) -> bytes:
        return orjson.dumps({"p": self.partition, "spike": self.spike.to_dict(),
                             "digest": None if self.digest is None else self.digest.to_dict()})

    @classmethod
    def load(cls, raw: bytes | None, partition: int) -> WatchSignals:
        if not raw:
            return cls(partition)
        data: dict[str, Any] = orjson.loads(raw)
        digest = data.get("digest")
        return cls(int(data.get("p", partition)), SpikeState.from_dict(data.get("spike")),
                   None if not digest else DigestState.from_dict(digest))


class _Clock:
    """Per partition: the newest event time seen, and the wall time of its last event."""

    event_time: dict[int, float] = {}
    last_event: dict[int, float] = {}


class _Recent:
    sent: set[tuple[str, str]] = set()
    stale = True


@app.on_rebalance_complete.connect
async def _rebalanced(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
    _Recent.stale = True
    # The timer closes digests of the partitions read now; one just taken over counts as
    # idle since now (its event time is learnt from its next alert).
    name = topics["alerts"].get_topic_name()
    owned = {tp.partition for tp in app.consumer.assignment() if tp.topic == name}
    now = time.time()
    _Clock.last_event = {p: _Clock.last_event.get(p, now) for p in owned}
    _Clock.event_time = {p: t for p, t in _Clock.event_time.items() if p in owned}


async def _recall_sent() -> None:
    if _Recent.stale:
        _Recent.stale = False
        _Recent.sent = await sent_recently(settings,
                                           window_seconds=settings.alert_recovery_seconds)


async def _publish(watch: Watch, record: Alert, *, to_webhook: bool) -> None:
    if (record.alert_id, record.article_id) in _Recent.sent:
        log.info("%s %s went out before a restart; not sent again", record.kind,
                 record.alert_id, extra={"alert_id": record.alert_id, "watch_id": watch.id})
        return
    key = watch.id.encode("utf-8")
    value = encode(record)
    await topics["alerts"].send(key=key, value=value)
    if to_webhook and watch.webhook_url:
        await topics["deliveries"].send(key=key, value=value)
    METRICS.alerts.labels(record.kind).inc()
    log.info("%s for watch %r: %s", record.kind, watch.name, record.title,
             extra={"alert_id": record.alert_id, "watch_id": watch.id})


def _fold_digest(state: WatchSignals, watch: Watch, alert: Alert, t: float,
                 now: float) -> list[Alert]:
    """Add a live alert to the watch's open digest; the digest it closes, if any."""
    closed: list[Alert] = []
    digest = state.digest
    if digest is not None and (digest.digest != watch.digest or t >= digest.end):
        if digest.stories:
            closed.append(digest_alert(digest, watch.id, watch.name, now))
        digest = None
    if watch.digest and alert.kind in LIVE_KINDS:
        if digest is None:
            start, end = period_of(t, watch.digest)
            digest = DigestState(watch.digest, start, end)
        digest.add(alert)  # a late alert joins the open period rather than be lost
    state.digest = digest
    return closed


@app.agent(stage_input("signals"))
async def signals_agent(stream: StreamT) -> None:
    async for event in stream.events():
        await watches_loaded()
        await _recall_sent()
        async with guarded("signals", event):
            alert = decode(Alert, event.value or b"")
            watch = registry.get(alert.watch_id)
            if alert.kind in OWN_KINDS or watch is None:
                outcome("signals", "dropped").inc()
                continue
            partition = event.message.partition
            t = alert.received_at or alert.updated_at
            now = time.time()
            _Clock.event_time[partition] = max(_Clock.event_time.get(partition, 0.0), t)
            _Clock.last_event[partition] = now
            key = watch.id.encode("utf-8")
            state = WatchSignals.load(signal_table.get(key), partition)
            records = [spike_alert(found, watch.id, watch.name, t, now, watch.priority)
                       for found in state.spike.add(t, hits_of(alert.kind, alert.held_alerts),
                                                    spike_hours=watch.spike_hours,
                                                    spike_days=watch.spike_days)]
            records += _fold_digest(state, watch, alert, t, now)
            for record in records:
                await _publish(watch, record,
                               to_webhook=record.kind == "digest" or watch.live)
            signal_table[key] = state.dump()
            outcome("signals", "emitted" if records else "dropped").inc()


@app.timer(CLOSE_EVERY_SECONDS)
async def close_digests() -> None:
    """Send the digests whose period is over by event time (or, on an idle partition, by the
    wall clock) and that no later alert has closed yet."""
    now = time.time()
    for key, raw in list(signal_table.items()):
        if not raw:
            continue
        state = WatchSignals.load(raw, -1)
        digest = state.digest
        if digest is None or state.partition not in _Clock.last_event:
            continue  # not a partition this worker reads now
        if not digest.due(_Clock.event_time.get(state.partition, 0.0), now,
                          _Clock.last_event[state.partition],
                          idle_seconds=settings.signals_idle_seconds):
            continue
        watch = registry.get(key.decode("utf-8"))
        if watch is None:  # removed: its state goes too
            del signal_table[key]
            continue
        if digest.stories:
            await _publish(watch, digest_alert(digest, watch.id, watch.name, now),
                           to_webhook=True)
        state.digest = None
        signal_table[key] = state.dump()
