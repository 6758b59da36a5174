"""Watch spikes: a watch's hits in the current hour (or day) against its own baseline, as
Meltwater's spike alerts compare a saved search's volume: by default the hour against the
previous 12 hours, the day against the previous 14 days (a watch's ``spike_hours`` and
``spike_days``).

A hit is an article that opened or updated one of the watch's alerts (held ones count: the
rate limit's summary says how many). Hours and days are UTC periods of event time, the
articles' ``received_at``. The test is the surge's (``agents.signals.surge``): the period's
count reaches ``max(MIN_HITS, FACTOR * mean + SPREAD * sqrt(mean))``, the mean taken over the
baseline periods. It fires once per period, at the first hit that crosses it; a watch with
less history than its baseline compares against the periods it has (none: no spike).

State per watch: hits per hour for the longest baseline (at most 24 x 90 + 24 entries, ~40
KB; the defaults keep 14 days: 360 entries, ~6 KB) and the last period that fired.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from agents.signals.priority import priority_of
from streams.records import Alert, Signal, stable_id

__all__ = ["SpikeState", "hits_of", "spike_alert"]

HOUR = 3600
DAY = 24 * HOUR
DEFAULT_HOURS = 12
DEFAULT_DAYS = 14
MIN_HITS = 5
FACTOR = 3.0
SPREAD = 2.0


def hits_of(kind: str, held_alerts: int) -> int:
    """Articles one alert record stands for: a revision is one; a summary, those it held."""
    if kind in ("opened", "update", "surge"):
        return 1
    return held_alerts if kind == "summary" else 0


@dataclass(slots=True)
class SpikeState:
    hours: dict[int, int] = field(default_factory=dict)  # hour index (t // 3600) -> hits
    fired_hour: int = -1
    fired_day: int = -1

    def add(self, t: float, hits: int, *, spike_hours: int | None = None,
            spike_days: int | None = None) -> list[Signal]:
        """Count ``hits`` at event time ``t``; the spikes (hour, day) they set off."""
        if hits <= 0:
            return []
        hour = int(t // HOUR)
        self.hours[hour] = self.hours.get(hour, 0) + hits
        base_hours = spike_hours or DEFAULT_HOURS
        base_days = spike_days or DEFAULT_DAYS
        self._prune(hour, max(base_hours, base_days * 24 + 24))
        fired: list[Signal] = []
        if hour != self.fired_hour:
            signal = self._test("1h", self.hours.get(hour, 0),
                                [self.hours.get(h, 0) for h in range(hour - base_hours, hour)],
                                self._history_hours(hour))
            if signal is not None:
                self.fired_hour = hour
                fired.append(signal)
        day = hour // 24
        if day != self.fired_day:
            signal = self._test("1d", self._day(day),
                                [self._day(d) for d in range(day - base_days, day)],
                                self._history_hours(day * 24) // 24)
            if signal is not None:
                self.fired_day = day
                fired.append(signal)
        return fired

    def _day(self, day: int) -> int:
        return sum(self.hours.get(h, 0) for h in range(day * 24, day * 24 + 24))

    def _history_hours(self, before: int) -> int:
        """How many hours of history precede hour ``before``."""
        earlier = [h for h in self.hours if h < before]
        return before - min(earlier) if earlier else 0

    def _test(self, window: str, value: int, baseline: list[int],
              history: int) -> Signal | None:
        periods = min(len(baseline), history)
        if periods <= 0:
            return None
        mean = sum(baseline[-periods:]) / periods
        threshold = max(float(MIN_HITS), FACTOR * mean + SPREAD * math.sqrt(mean))
        if value < threshold:
            return None
        unit = "hours" if window == "1h" else "days"
        return Signal("spike", window, float(value), round(mean, 3), round(threshold, 3),
                      f"{value} hits this {'hour' if window == '1h' else 'day'} against "
                      f"{mean:.1f} a period over the previous {periods} {unit}; "
                      f"threshold {threshold:.1f}")

    def _prune(self, hour: int, keep: int) -> None:
        oldest = hour - keep
        if self.hours and min(self.hours) < oldest:
            self.hours = {h: n for h, n in self.hours.items() if h >= oldest}

    def to_dict(self) -> dict[str, Any]:
        return {"h": {str(h): n for h, n in self.hours.items()}, "fh": self.fired_hour,
                "fd": self.fired_day}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> SpikeState:
        if not data:
            return cls()
        return cls({int(h): int(n) for h, n in data.get("h", {}).items()},
                   int(data.get("fh", -1)), int(data.get("fd", -1)))


def spike_alert(signal: Signal, watch_id: str, watch_name: str, t: float, now: float,
                floor: str | None) -> Alert:
    """The ``spike`` record of ``signal``, raised at event time ``t``: one per watch, window
    and period (its id derives from them, so a repeat has the same ``(alert_id, revision)``)."""
    length = HOUR if signal.window == "1h" else DAY
    period = int(t // length)
    priority = priority_of(None, t, spike=True, floor=floor)
    return Alert(alert_id=stable_id("spike", watch_id, signal.window, str(period)),
                 kind="spike", revision=1, watch_id=watch_id, watch_name=watch_name,
                 story_id="", article_id=f"{signal.window}:{period}",
                 title=f"{watch_name}: {int(signal.value)} hits in the "
                       f"{'hour' if signal.window == '1h' else 'day'}, against "
                       f"{signal.baseline:g} usually",
                 url=None, source=None, published_at=None, sources=[], article_ids=[],
                 terms=[], matches=[], opened_at=float(period * length), updated_at=now,
                 received_at=t, priority=priority.level, priority_reason=priority.reason,
                 signal=signal)
