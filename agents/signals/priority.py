"""Every alert's priority: ``flash``, ``urgent`` or ``routine``, from its signals.

The rule, first match wins, then raised to the watch's own ``priority`` when that is higher:

* **flash**: a surge (``agents.signals.surge``), or a young story (first seen at most
  ``YOUNG_SECONDS`` ago) that ``FLASH_NEW_SOURCES`` sources have picked up within 15 minutes;
* **urgent**: ``URGENT_NEW_SOURCES`` new sources within the hour, or a spike of the watch's
  hits, or a watched entity trending, or a story at most ``FRESH_SECONDS`` old that a second
  source has already confirmed;
* **routine**: everything else (one outlet's story, a slow follow-up, a digest).

Source counts, not article counts: one outlet's live blog updating every minute is not news
spreading. The thresholds are what a wire desk calls a story "moving": several independent
outlets within minutes. The rate limit never holds a ``flash`` (``agents.alert.ratelimit``).
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.records import StorySummary

__all__ = ["LEVELS", "Priority", "priority_of"]

LEVELS = ("routine", "urgent", "flash")  # lowest first
YOUNG_SECONDS = 2 * 3600.0
FRESH_SECONDS = 30 * 60.0
FLASH_NEW_SOURCES = 4
URGENT_NEW_SOURCES = 3


@dataclass(frozen=True, slots=True)
class Priority:
    level: str
    reason: str


def _rank(level: str | None) -> int:
    return LEVELS.index(level) if level in LEVELS else 0


def priority_of(story: StorySummary | None, now: float, *, surge: bool = False,
                spike: bool = False, trend: bool = False, floor: str | None = None) -> Priority:
    """The priority of an alert about ``story`` (None: no story, e.g. a spike or a digest)
    at event time ``now`` (the article's ``received_at``; the story's age is counted from its
    ``first_received``, so a replay ranks as live did); ``floor``: the watch's own setting."""
    found = (Priority("urgent", "a watched entity is trending") if trend
             else _from_signals(story, now, surge=surge, spike=spike))
    if floor is not None and _rank(floor) > _rank(found.level):
        return Priority(floor, f"the watch's priority is {floor} ({found.reason})")
    return found


def _from_signals(story: StorySummary | None, now: float, *, surge: bool,
                  spike: bool) -> Priority:
    if surge:
        return Priority("flash", "the story is surging")
    age = None if story is None or not story.first_received else max(0.0, now - story.first_received)
    if story is not None and age is not None:
        if age <= YOUNG_SECONDS and story.new_sources_15m >= FLASH_NEW_SOURCES:
            return Priority("flash", f"{story.new_sources_15m} new sources in 15 min on a "
                                     f"story {_minutes(age)} old")
        if story.new_sources_1h >= URGENT_NEW_SOURCES:
            return Priority("urgent", f"{story.new_sources_1h} new sources in the last hour")
    if spike:
        return Priority("urgent", "the watch's hits are spiking")
    if story is not None and age is not None and age <= FRESH_SECONDS and len(story.sources) >= 2:
        return Priority("urgent", f"{len(story.sources)} sources on a story "
                                  f"{_minutes(age)} old")
    return Priority("routine", "no sign of a fast-moving story")


def _minutes(seconds: float) -> str:
    return f"{round(seconds / 60)} min"
