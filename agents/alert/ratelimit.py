"""Per-watch rate limit: a burst of alerts is folded into one summary instead of paging a
desk fifty times.

Each watch may emit ``limit`` alerts (opened or updated) per sliding ``window`` seconds
(``Watch.rate_limit`` or the configured default). Alerts over the limit are *held*: their
state is still updated, so the next alert that does go out carries every source, but they
are not sent (revisions may skip). One ``window`` after the first held alert, a single
``summary`` alert lists what was held. Held alerts live in this worker's memory: a restart
drops a pending summary, never an alert's state; with several workers the limit applies per
worker (alerts of one watch spread over the story partitions).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from streams.records import Alert, stable_id

__all__ = ["RateLimiter"]

MAX_LISTED = 200


@dataclass(slots=True)
class _Held:
    first_at: float
    alerts: list[Alert] = field(default_factory=list)
    count: int = 0


class RateLimiter:
    def __init__(self, *, window: float, default_limit: int) -> None:
        self.window = window
        self.default_limit = default_limit
        self._sent: dict[str, deque[float]] = {}
        self._held: dict[str, _Held] = {}

    def admit(self, watch_id: str, now: float, limit: int | None = None) -> bool:
        """True if an alert for ``watch_id`` may go out now (and count it)."""
        sent = self._sent.setdefault(watch_id, deque())
        while sent and sent[0] <= now - self.window:
            sent.popleft()
        if len(sent) >= (limit or self.default_limit):
            return False
        sent.append(now)
        return True

    def hold(self, alert: Alert, now: float) -> None:
        held = self._held.setdefault(alert.watch_id, _Held(first_at=now))
        held.count += 1
        if len(held.alerts) < MAX_LISTED:
            held.alerts.append(alert)

    def due_summaries(self, now: float) -> list[Alert]:
        """Summaries of the watches whose first held alert is a window old."""
        due = [wid for wid, held in self._held.items() if now - held.first_at >= self.window]
        return [_summary(self._held.pop(wid), now) for wid in due]

    @property
    def held(self) -> int:
        return sum(h.count for h in self._held.values())


def _summary(held: _Held, now: float) -> Alert:
    first = held.alerts[0]
    stories = list(dict.fromkeys(a.story_id for a in held.alerts))
    sources = list(dict.fromkeys(s for a in held.alerts for s in a.sources))[:50]
    terms = list(dict.fromkeys(t for a in held.alerts for t in a.terms))[:100]
    return Alert(
        alert_id=stable_id("summary", first.watch_id, repr(held.first_at)),
        kind="summary", revision=1, watch_id=first.watch_id, watch_name=first.watch_name,
        story_id="", article_id="",
        title=f"{held.count} more alert(s) for {first.watch_name!r} on {len(stories)} "
              "story(ies), held by the rate limit",
        url=None, source=None, published_at=None, sources=sources,
        article_ids=list(dict.fromkeys(a.article_id for a in held.alerts)),
        terms=terms, matches=[], opened_at=held.first_at, updated_at=now,
        received_at=min(a.received_at for a in held.alerts), story_ids=stories,
        held_alerts=held.count)
