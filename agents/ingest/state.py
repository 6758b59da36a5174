"""What ingest remembers per source: the items it has published, the feed's validators, its
health. One ``SourceState`` is one record of the compacted ``news.ingest-state`` topic,
keyed by the source's URL and written to the partition its source record has on
``news.sources``, so whoever polls a source reads its state from the same partition.

**Seen ids, bounded.** ``seen`` lists item ids oldest first. Each successful poll moves the
ids still listed in the document to the end (``refresh``), so what falls out first is what
the feed no longer shows; beyond ``cap`` ids the oldest go. A cap above the number of items
a document lists (10,000 by default: feeds list 10-100, a Google News sitemap at most 1,000)
therefore never forgets an item that is still listed, and an item no longer listed cannot
come back to be published twice. About 19 bytes an id on the wire.

**Health.** ``record_success`` and ``record_failure`` move the schedule (exponential backoff,
capped, at least any Retry-After) and return a ``Transition`` when the source's health
changes (it starts failing, fails for another reason, has failed longer than the reporting
threshold, recovers), so the caller logs once per change rather than once per poll.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, fields
from typing import Any

import orjson

from streams.errors import BadRecord

__all__ = ["HEALTH", "SourceState", "Transition", "backoff_delay", "health"]

#: A source's health: ok; backing_off: failing, for less than the reporting threshold;
#: failing: failing for longer (reported: metric, log, status).
HEALTH = ("ok", "backing_off", "failing")


@dataclass(slots=True)
class SourceState:
    url: str
    etag: str | None = None
    last_modified: str | None = None
    seen: list[str] = field(default_factory=list)
    next_poll: float = 0.0
    first_poll: float | None = None
    last_poll: float | None = None
    last_success: float | None = None
    failing_since: float | None = None
    failures: int = 0
    reason: str | None = None
    detail: str | None = None
    reported: bool = False  # a long failure already reported
    published: int = 0
    page_attempts: dict[str, int] = field(default_factory=dict)
    children: dict[str, list[str | None]] = field(default_factory=dict)  # sitemap -> validators
    _seen_set: set[str] | None = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------ seen ids

    def has_seen(self, item_id: str) -> bool:
        if self._seen_set is None:
            self._seen_set = set(self.seen)
        return item_id in self._seen_set

    def mark_seen(self, ids: list[str]) -> None:
        for item_id in ids:
            if not self.has_seen(item_id):
                self.seen.append(item_id)
                assert self._seen_set is not None
                self._seen_set.add(item_id)
            self.page_attempts.pop(item_id, None)

    def refresh(self, present: list[str], cap: int) -> int:
        """Move the seen ids still ``present`` (document order) to the newest end, then keep
        the newest ``cap``; returns how many were forgotten."""
        listed = [i for i in dict.fromkeys(present) if self.has_seen(i)]
        if listed:
            moved = set(listed)
            self.seen = [i for i in self.seen if i not in moved] + listed
        dropped = max(0, len(self.seen) - cap)
        if dropped:
            del self.seen[:dropped]
        self._seen_set = None
        return dropped

    # ------------------------------------------------------------------ health

    def record_success(self, now: float, interval: float, *, jitter: float = 0.05
                       ) -> Transition | None:
        was = (self.failures, self.failing_since, self.reason)
        self.last_success = now
        self.next_poll = now + interval * (1 + random.uniform(-jitter, jitter))
        self.failures = 0
        self.failing_since = None
        self.reason = self.detail = None
        self.reported = False
        if was[0]:
            return Transition("recovered", was[2], failures=was[0], since=was[1])
        return None

    def record_failure(self, now: float, reason: str, detail: str, *, interval: float,
                       max_backoff: float, failing_after: float,
                       retry_after: float | None = None) -> Transition | None:
        previous = self.reason
        self.failures += 1
        if self.failing_since is None:
            self.failing_since = now
        self.reason, self.detail = reason, detail[:500]
        delay = backoff_delay(self.failures, interval, max_backoff, retry_after)
        self.next_poll = now + delay
        if self.failures == 1:
            return Transition("failing", reason, failures=1, since=now, retry_in=delay)
        if now - self.failing_since >= failing_after and not self.reported:
            self.reported = True
            return Transition("failing_long", reason, failures=self.failures,
                              since=self.failing_since, retry_in=delay)
        if reason != previous:
            return Transition("reason_changed", reason, failures=self.failures,
                              since=self.failing_since, retry_in=delay)
        return None

    # ------------------------------------------------------------------ wire format

    def to_json(self) -> bytes:
        return orjson.dumps({f.name: getattr(self, f.name) for f in fields(self)
                             if not f.name.startswith("_")})

    @classmethod
    def from_json(cls, raw: bytes) -> SourceState:
        try:
            data: Any = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise BadRecord(f"ingest state is not JSON: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("url"), str):
            raise BadRecord("ingest state must be an object with a string 'url'")
        known = {f.name for f in fields(cls) if not f.name.startswith("_")}
        try:
            state = cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as exc:
            raise BadRecord(f"ingest state: {exc}") from None
        if not isinstance(state.seen, list) or not all(isinstance(i, str) for i in state.seen):
            raise BadRecord("ingest state: 'seen' must be a list of strings")
        return state


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of a source's health, to be logged once."""

    kind: str  # failing | reason_changed | failing_long | recovered
    reason: str | None
    failures: int
    since: float | None
    retry_in: float | None = None


def backoff_delay(failures: int, interval: float, max_backoff: float,
                  retry_after: float | None = None, *, jitter: float = 0.1) -> float:
    """Seconds until the next poll after ``failures`` failures in a row: the interval, then
    doubling (2, 4, 8... intervals), capped at ``max_backoff``, never less than a
    ``Retry-After`` the server gave (capped at a day), with +-``jitter`` so that sources
    failing together do not come back together."""
    exponent = min(max(failures - 1, 0), 30)
    delay = min(max_backoff, interval * 2 ** exponent)
    delay *= 1 + random.uniform(-jitter, jitter)
    if retry_after is not None:
        delay = max(delay, min(retry_after, 86_400.0))
    return max(delay, 1.0)


def health(state: SourceState, now: float, failing_after: float) -> str:
    """ok, backing_off or failing (see ``HEALTH``)."""
    if not state.failures or state.failing_since is None:
        return "ok"
    return "failing" if now - state.failing_since >= failing_after else "backing_off"
