"""How fast a story is growing: its articles and distinct sources in the last 15 minutes and
the last hour, on event time (the articles' ``received_at``), so a replay counts as live did.

A story keeps, beside its centroid (``agents.dedup.stories.Story``):

* ``minutes``: articles per minute of event time, for the last hour (at most 61 entries);
* ``last_by_source``: each source's latest article, for the sources seen in the last hour
  (at most ``MAX_RECENT_SOURCES``; past that, the longest quiet ones are forgotten);
* ``first_by_source``: when each source first wrote on the story (at most
  ``MAX_FIRST_SOURCES``; a story with more has surged long ago), for "new sources".

That is at most ~12 KB per story, ~200 bytes for a typical one. Counts are exact up to the
caps. Out-of-order arrivals count in their own minute; minutes older than an hour before the
newest one are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_FIRST_SOURCES", "MAX_RECENT_SOURCES", "Velocity", "VelocityCounts"]

SHORT_WINDOW = 15 * 60.0
LONG_WINDOW = 3600.0
MAX_RECENT_SOURCES = 200
MAX_FIRST_SOURCES = 200


@dataclass(frozen=True, slots=True)
class VelocityCounts:
    first_received: float  # event time of the story's first article
    articles_15m: int
    sources_15m: int
    new_sources_15m: int  # sources whose first article on the story is in the window
    articles_1h: int
    sources_1h: int
    new_sources_1h: int


@dataclass(slots=True)
class Velocity:
    minutes: dict[int, int] = field(default_factory=dict)
    last_by_source: dict[str, float] = field(default_factory=dict)
    first_by_source: dict[str, float] = field(default_factory=dict)
    newest: float = 0.0  # the latest event time seen
    first: float = 0.0  # the earliest (0: none yet)

    def observe(self, t: float, source: str | None) -> None:
        """Count one article that arrived at event time ``t``."""
        self.newest = max(self.newest, t)
        self.first = t if not self.first else min(self.first, t)
        horizon = self.newest - LONG_WINDOW
        if t >= horizon:
            minute = int(t // 60)
            self.minutes[minute] = self.minutes.get(minute, 0) + 1
        oldest_minute = int(horizon // 60)
        if self.minutes and min(self.minutes) < oldest_minute:
            self.minutes = {m: n for m, n in self.minutes.items() if m >= oldest_minute}
        if source:
            self._note_source(source, t, horizon)

    def _note_source(self, source: str, t: float, horizon: float) -> None:
        if source not in self.first_by_source:
            if len(self.first_by_source) < MAX_FIRST_SOURCES:
                self.first_by_source[source] = t
        elif t < self.first_by_source[source]:
            self.first_by_source[source] = t  # an earlier article arrived late
        last = self.last_by_source
        if t >= horizon and t > last.get(source, float("-inf")):
            last[source] = t
        if len(last) > MAX_RECENT_SOURCES or (last and min(last.values()) < horizon):
            kept = sorted(((when, name) for name, when in last.items() if when >= horizon),
                          reverse=True)[:MAX_RECENT_SOURCES]
            self.last_by_source = {name: when for when, name in kept}

    def counts(self, now: float | None = None) -> VelocityCounts:
        """The windows ending at ``now`` (default: the newest event time seen)."""
        end = self.newest if now is None else now
        short, long = end - SHORT_WINDOW, end - LONG_WINDOW
        return VelocityCounts(
            first_received=self.first,
            articles_15m=sum(n for m, n in self.minutes.items() if (m + 1) * 60 > short),
            sources_15m=sum(1 for t in self.last_by_source.values() if t > short),
            new_sources_15m=sum(1 for t in self.first_by_source.values() if t > short),
            articles_1h=sum(n for m, n in self.minutes.items() if (m + 1) * 60 > long),
            sources_1h=sum(1 for t in self.last_by_source.values() if t > long),
            new_sources_1h=sum(1 for t in self.first_by_source.values() if t > long),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"m": {str(m): n for m, n in self.minutes.items()}, "l": self.last_by_source,
                "f": self.first_by_source, "n": self.newest, "s": self.first}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Velocity:
        if not data:
            return cls()
        return cls(
            minutes={int(m): int(n) for m, n in data.get("m", {}).items()},
            last_by_source={str(s): float(t) for s, t in data.get("l", {}).items()},
            first_by_source={str(s): float(t) for s, t in data.get("f", {}).items()},
            newest=float(data.get("n", 0.0)),
            first=float(data.get("s", 0.0)),
        )
