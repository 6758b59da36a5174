"""Entity trends: the entities whose mentions in the last hour stand out against their
previous 72 hours, as GDELT's trend lists do, on event time (the articles' ``received_at``).

**Counting.** An article counts once for each entity it names (its ``count`` is ignored: a
profile that names someone forty times is one mention). Counts are kept per UTC hour:

* exactly, for up to ``MAX_TRACKED`` entities (the heavy hitters): a new entity takes a slot;
  when they are full, the tenth with the fewest mentions in the last 72 hours is dropped;
* approximately, for every entity, in a count-min sketch per hour (``DEPTH`` rows of
  ``WIDTH`` counters: it never undercounts, and overcounts by at most ~e/WIDTH of the hour's
  mentions with probability 1 - e^-DEPTH), so an entity that starts being tracked now still
  has its history: the sketch gives its past hours.

**Score.** For the last hour's mentions ``c`` (the current hour, plus the previous hour in
proportion to how much of it lies in the last 60 minutes) against a baseline mean per hour
``m`` over the previous ``BASELINE_HOURS`` (fewer while the stream is younger), the score is
the difference of Anscombe-transformed Poisson counts,
``2 * (sqrt(c + 3/8) - sqrt(m + 3/8))``, roughly a z-score under "nothing changed" whatever
the entity's usual volume (a plain ratio ranks a one-off name first; a plain difference,
the ever-present heads of state). An entity trends when ``c >= MIN_MENTIONS`` and the score
is at least ``MIN_SCORE``; the ``TOP`` highest are reported.

**Size.** Tracked entities: ~``BASELINE_HOURS`` small ints each (~0.5 KB as JSON); 5,000 of
them ~2.5 MB. Sketches: ``DEPTH x WIDTH`` int32 per hour (24 KB), 74 hours ~1.8 MB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xxhash

__all__ = ["Trend", "TrendCounter", "entity_key", "trend_score"]

HOUR = 3600
BASELINE_HOURS = 72
MAX_TRACKED = 5_000
WIDTH = 2_048
DEPTH = 3
MIN_MENTIONS = 5
MIN_SCORE = 3.0
TOP = 20
#: The stream must be this old (event time) before anything can trend: at the start every
#: entity is new.
MIN_HISTORY_HOURS = 1


def entity_key(kind: str, name: str) -> str:
    return f"{kind}:{name.casefold()}"


def trend_score(mentions: float, baseline: float) -> float:
    return 2.0 * (math.sqrt(mentions + 0.375) - math.sqrt(baseline + 0.375))


@dataclass(frozen=True, slots=True)
class Trend:
    key: str  # "kind:folded name"
    name: str  # as last written
    kind: str
    mentions_1h: float
    baseline_per_hour: float
    baseline_hours: int
    score: float


def _columns(key: str) -> np.ndarray:
    digest = xxhash.xxh3_128_digest(key.encode("utf-8"))
    words = np.frombuffer(digest, dtype="<u4")[:DEPTH].astype(np.int64)
    return words % WIDTH


@dataclass(slots=True)
class TrendCounter:
    tracked: dict[str, dict[int, int]] = field(default_factory=dict)  # key -> hour -> count
    names: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (name, kind)
    sketches: dict[int, np.ndarray] = field(default_factory=dict)  # hour -> DEPTH x WIDTH
    first_hour: int = -1  # the stream's first hour of event time
    newest: float = 0.0
    max_tracked: int = MAX_TRACKED
    dropped: set[str] = field(default_factory=set)  # evicted since the last drain

    def add(self, t: float, entities: list[tuple[str, str]]) -> None:
        """Count one article at event time ``t`` naming ``entities`` ((name, kind) pairs)."""
        hour = int(t // HOUR)
        if self.first_hour < 0 or hour < self.first_hour:
            self.first_hour = hour
        self.newest = max(self.newest, t)
        sketch = self.sketches.get(hour)
        if sketch is None:
            sketch = self.sketches[hour] = np.zeros((DEPTH, WIDTH), dtype=np.int32)
            self._prune(hour)
        rows = np.arange(DEPTH)
        for key in dict.fromkeys(entity_key(kind, name) for name, kind in entities):
            sketch[rows, _columns(key)] += 1
            counts = self.tracked.get(key)
            if counts is None:
                counts = self._track(key, hour)
            counts[hour] = counts.get(hour, 0) + 1
        for name, kind in entities:
            self.names[entity_key(kind, name)] = (name, kind)

    def _track(self, key: str, hour: int) -> dict[int, int]:
        if len(self.tracked) >= self.max_tracked:
            self._evict(hour)
        # Its past hours from the sketches (upper bounds), so it has a baseline at once.
        counts = {h: n for h in self.sketches if h < hour and (n := self._sketched(key, h))}
        self.tracked[key] = counts
        return counts

    def _evict(self, hour: int) -> None:
        horizon = hour - BASELINE_HOURS
        totals = sorted((sum(n for h, n in counts.items() if h >= horizon), key)
                        for key, counts in self.tracked.items())
        for _, key in totals[: max(1, len(totals) // 10)]:
            del self.tracked[key]
            self.names.pop(key, None)
            self.dropped.add(key)

    def drain_dropped(self) -> set[str]:
        """The keys evicted since the last call (their saved records are deleted)."""
        dropped, self.dropped = self.dropped, set()
        return dropped

    def _sketched(self, key: str, hour: int) -> int:
        sketch = self.sketches.get(hour)
        if sketch is None:
            return 0
        return int(sketch[np.arange(DEPTH), _columns(key)].min())

    def _prune(self, hour: int) -> None:
        oldest = hour - BASELINE_HOURS - 1
        for old in [h for h in self.sketches if h < oldest]:
            del self.sketches[old]
        for counts in self.tracked.values():
            for old in [h for h in counts if h < oldest]:
                del counts[old]

    def count(self, key: str, hour: int) -> int:
        counts = self.tracked.get(key)
        return counts.get(hour, 0) if counts is not None else self._sketched(key, hour)

    def trends(self, now: float | None = None, *, top: int = TOP) -> list[Trend]:
        """The entities trending in the hour before ``now`` (default: the newest event)."""
        end = self.newest if now is None else now
        hour = int(end // HOUR)
        # Whole hours of stream before the previous hour, up to the baseline's length.
        history = min(BASELINE_HOURS, hour - 1 - self.first_hour) if self.first_hour >= 0 else 0
        if history < MIN_HISTORY_HOURS:
            return []
        share = 1.0 - (end - hour * HOUR) / HOUR  # of the previous hour, in the last 60 min
        found = []
        for key, counts in self.tracked.items():
            mentions = counts.get(hour, 0) + share * counts.get(hour - 1, 0)
            if mentions < MIN_MENTIONS:
                continue
            # The previous hour's part outside the last 60 minutes belongs to the baseline.
            base = (sum(counts.get(h, 0) for h in range(hour - 1 - history, hour - 1))
                    + (1.0 - share) * counts.get(hour - 1, 0))
            baseline = base / (history + 1.0 - share)
            score = trend_score(mentions, baseline)
            if score >= MIN_SCORE:
                name, kind = self.names.get(key, (key.partition(":")[2], key.partition(":")[0]))
                found.append(Trend(key, name, kind, round(mentions, 2), round(baseline, 3),
                                   history, round(score, 3)))
        found.sort(key=lambda trend: (-trend.score, trend.key))
        return found[:top]

    def to_dict(self) -> dict[str, Any]:
        return {
            "tracked": {k: {str(h): n for h, n in c.items()} for k, c in self.tracked.items()},
            "names": self.names, "first": self.first_hour, "newest": self.newest,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> TrendCounter:
        if not data:
            return cls()
        return cls(
            tracked={k: {int(h): int(n) for h, n in c.items()}
                     for k, c in data.get("tracked", {}).items()},
            names={k: (str(v[0]), str(v[1])) for k, v in data.get("names", {}).items()},
            first_hour=int(data.get("first", -1)), newest=float(data.get("newest", 0.0)))

    def sketch_bytes(self, hour: int) -> bytes | None:
        sketch = self.sketches.get(hour)
        return None if sketch is None else sketch.astype("<i4").tobytes()

    def load_sketch(self, hour: int, data: bytes) -> None:
        self.sketches[hour] = np.frombuffer(data, dtype="<i4").reshape(DEPTH, WIDTH).astype(
            np.int32)
