"""Surges: a watched story that new sources pick up much faster than is normal for it.

The measure is ``new_sources_15m``: sources that wrote their first article on the story in
the last 15 minutes of event time (``agents.signals.velocity``). What is normal:

* for the story: the new sources per 15 minutes it gathered before this window
  (its sources before the window, over its age before the window in 15-minute periods);
* for the stream: ``StreamPace``, a slow exponential average of ``new_sources_15m`` over the
  watched articles the alert stage has seen (per partition, kept in a changelog-backed
  table; each article moves it by ``PACE_WEIGHT``, from 0), so a day when every story
  spreads fast raises the bar for all of them, while one story's own growth barely moves it
  (a plain mean over a young stream's few articles would be that story's pace).

The baseline is the larger of the two, and the threshold is
``max(MIN_SOURCES, FACTOR * baseline + SPREAD * sqrt(baseline))``: a jump far outside what a
Poisson count of that mean would give. A story surges when its new sources reach the
threshold; the surge ends (and the next one may fire) when they fall below half of it, so
a story hovering at the threshold raises one surge alert, not one per article.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from streams.records import Signal, StorySummary

__all__ = ["StreamPace", "SurgeCheck", "check_surge"]

WINDOW = 15 * 60.0
MIN_SOURCES = 3
FACTOR = 3.0
SPREAD = 2.0
#: The stream's average: each watched article moves it this much (about the last 200).
PACE_WEIGHT = 0.005


@dataclass(slots=True)
class StreamPace:
    rate: float = 0.0  # new sources per 15 minutes, averaged over watched articles
    samples: int = 0

    def observe(self, new_sources_15m: int) -> None:
        self.rate += PACE_WEIGHT * (new_sources_15m - self.rate)
        self.samples += 1

    def to_dict(self) -> dict[str, Any]:
        return {"rate": self.rate, "samples": self.samples}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> StreamPace:
        if not data:
            return cls()
        return cls(float(data.get("rate", 0.0)), int(data.get("samples", 0)))


@dataclass(frozen=True, slots=True)
class SurgeCheck:
    fires: bool  # a new surge starts with this article
    surging: bool  # the story is in a surge after this article
    signal: Signal


def story_baseline(story: StorySummary, now: float) -> float:
    """The new sources per 15 minutes the story gathered before the current window."""
    if not story.first_received:
        return 0.0
    before = max(0, len(story.sources) - story.new_sources_15m)
    periods = (now - WINDOW - story.first_received) / WINDOW
    return before / periods if periods >= 1.0 else 0.0


def check_surge(story: StorySummary, now: float, stream_rate: float,
                surging: bool) -> SurgeCheck:
    """Whether ``story`` (as of an article at event time ``now``) starts, continues or
    ends a surge; ``surging``: whether it was in one before this article."""
    own = story_baseline(story, now)
    baseline = max(own, stream_rate)
    threshold = max(float(MIN_SOURCES), FACTOR * baseline + SPREAD * math.sqrt(baseline))
    value = story.new_sources_15m
    if surging:
        still = value >= threshold / 2
        fires = False
    else:
        fires = still = value >= threshold
    detail = (f"{value} new sources in 15 min against a normal {baseline:.2f} "
              f"(story {own:.2f}, stream {stream_rate:.2f}); threshold {threshold:.1f}")
    return SurgeCheck(fires, still, Signal("surge", "15m", float(value), round(baseline, 3),
                                            round(threshold, 3), detail))
