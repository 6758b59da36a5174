"""The health strip: per-stage throughput and consumer lag from the workers' own ``/metrics``
(read with prometheus_client's text parser), dead letters of the last hour from
``news.deadletter`` itself. Pure: the server fetches, this reads and remembers.

Throughput is the rise of ``wirewatch_articles_total{outcome="received"}`` per stage between
two scrapes of a worker, summed over the workers (a counter that went down is a restarted
worker: its rate counts from zero). Lag is the sum of ``wirewatch_consumer_lag_messages``
over the workers' partitions and the largest ``wirewatch_consumer_lag_seconds``. Dead letters
are counted from the topic, not from the counters, so a restarted worker or board loses none:
the board reads the last hour of ``news.deadletter`` when it starts.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from streams.stages import STAGE_NAMES

__all__ = ["DeadLetters", "HealthTracker", "MetricsSample", "read_metrics"]

HOUR = 3600.0
#: Dead letters remembered for the count (a flood beyond this reports "at least").
MAX_DEAD_LETTERS = 100_000


@dataclass(slots=True)
class MetricsSample:
    """What the strip needs from one scrape of one worker."""

    at: float
    received: dict[str, float] = field(default_factory=dict)  # stage -> counter
    dead_lettered: dict[str, float] = field(default_factory=dict)
    lag_messages: dict[str, float] = field(default_factory=dict)  # topic -> sum over partitions
    lag_seconds: float = 0.0
    stalled: float = 0.0
    alerts: dict[str, float] = field(default_factory=dict)  # kind -> counter


def read_metrics(text: str, at: float) -> MetricsSample:
    """A ``MetricsSample`` from a Prometheus text exposition (raises ValueError on text that
    is not one)."""
    sample = MetricsSample(at=at)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            value = float(s.value)
            if not math.isfinite(value):
                continue
            labels = s.labels
            if s.name == "wirewatch_articles_total":
                stage = labels.get("stage", "")
                if labels.get("outcome") == "received":
                    sample.received[stage] = sample.received.get(stage, 0.0) + value
                elif labels.get("outcome") == "dead_lettered":
                    sample.dead_lettered[stage] = sample.dead_lettered.get(stage, 0.0) + value
            elif s.name == "wirewatch_consumer_lag_messages":
                topic = labels.get("topic", "")
                sample.lag_messages[topic] = sample.lag_messages.get(topic, 0.0) + value
            elif s.name == "wirewatch_consumer_lag_seconds":
                sample.lag_seconds = max(sample.lag_seconds, value)
            elif s.name == "wirewatch_stalled_partitions":
                sample.stalled += value
            elif s.name == "wirewatch_alerts_total":
                kind = labels.get("kind", "")
                sample.alerts[kind] = sample.alerts.get(kind, 0.0) + value
    return sample


def _rate(new: Mapping[str, float], old: Mapping[str, float], seconds: float) -> dict[str, float]:
    out = {}
    for key, value in new.items():
        before = old.get(key, 0.0)
        rise = value - before if value >= before else value  # a restarted worker
        out[key] = rise / seconds
    return out


class HealthTracker:
    """The last two samples of each worker, and what the strip shows from them."""

    def __init__(self, targets: list[str]) -> None:
        self.targets = list(targets)
        self._last: dict[str, tuple[MetricsSample | None, MetricsSample | None]] = {
            t: (None, None) for t in self.targets}
        self._errors: dict[str, str] = {}

    def observe(self, target: str, sample: MetricsSample) -> None:
        previous = self._last.get(target, (None, None))[1]
        self._last[target] = (previous, sample)
        self._errors.pop(target, None)

    def failed(self, target: str, error: str) -> None:
        self._errors[target] = error[:300]
        self._last[target] = (None, None)  # a rate across the gap would be wrong

    def snapshot(self, *, dead_letters: Mapping[str, Any], topic_prefix: str = "") -> dict[str, Any]:
        rates: dict[str, float] = dict.fromkeys(STAGE_NAMES, 0.0)
        lag: dict[str, float] = {}
        lag_seconds = 0.0
        stalled = 0.0
        up = 0
        measured = False
        for _, (old, new) in self._last.items():
            if new is None:
                continue
            up += 1
            if old is not None and new.at > old.at:
                measured = True
                for stage, rate in _rate(new.received, old.received, new.at - old.at).items():
                    rates[stage] = rates.get(stage, 0.0) + rate
            for topic, value in new.lag_messages.items():
                name = topic[len(topic_prefix):] if topic.startswith(topic_prefix) else topic
                lag[name] = lag.get(name, 0.0) + value
            lag_seconds = max(lag_seconds, new.lag_seconds)
            stalled += new.stalled
        return {
            "workers": len(self.targets), "workers_up": up,
            "errors": [f"{t}: {e}" for t, e in sorted(self._errors.items())],
            "throughput": ({s: round(r, 2) for s, r in rates.items()} if measured else None),
            "lag_messages": int(sum(lag.values())), "lag_by_topic": {t: int(v) for t, v in lag.items()},
            "lag_seconds": round(lag_seconds, 1), "stalled_partitions": int(stalled),
            "dead_letters": dict(dead_letters),
        }


class DeadLetters:
    """When each recent dead letter was written, and by which stage, for the last-hour count."""

    def __init__(self, maxlen: int = MAX_DEAD_LETTERS) -> None:
        self._seen: collections.deque[tuple[float, str]] = collections.deque(maxlen=maxlen)

    def add(self, at: float, stage: str) -> None:
        self._seen.append((at, stage))

    def last_hour(self, now: float) -> dict[str, Any]:
        cutoff = now - HOUR
        while self._seen and self._seen[0][0] < cutoff:
            self._seen.popleft()
        by_stage: dict[str, int] = {}
        for at, stage in self._seen:
            if at >= cutoff:
                by_stage[stage] = by_stage.get(stage, 0) + 1
        total = sum(by_stage.values())
        return {"last_hour": total, "by_stage": by_stage,
                "at_least": total >= (self._seen.maxlen or 0)}
