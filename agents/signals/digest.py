"""Digests: one record per watch and period (hourly or daily) listing the period's stories,
ranked by priority, as Google Alerts and Muck Rack send them instead of (or besides) live
alerts.

Periods are UTC hours or days of event time (the alerts' ``received_at``). A period closes
when the partition's event time (the newest ``received_at`` it has seen) passes its end by
``GRACE_SECONDS``, so late alerts still count and a replay closes periods as live did; a
partition with no event for ``IDLE_SECONDS`` of wall time (``WIREWATCH_SIGNALS_IDLE_SECONDS``)
closes its due periods by the wall clock instead, so a quiet stream still gets its digest.
The digest's id derives from the watch and the period: a digest sent again after a crash
has the same ``(alert_id, revision)``, and the agent reads back what it sent before a
restart (``recovery``) so it is not sent twice.

State per watch: the open period's stories, at most ``MAX_STORIES`` (past that, the lowest
ranked are dropped), each ~300 bytes: ~60 KB at most.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from agents.signals.priority import LEVELS
from streams.records import Alert, DigestStory, stable_id

__all__ = ["DigestState", "PERIOD_SECONDS", "digest_alert", "period_of"]

PERIOD_SECONDS = {"hourly": 3600, "daily": 86400}
GRACE_SECONDS = 60.0
IDLE_SECONDS = 600.0
MAX_STORIES = 200


def period_of(t: float, digest: str) -> tuple[float, float]:
    length = PERIOD_SECONDS[digest]
    start = float(int(t // length) * length)
    return start, start + length


def _rank(story: DigestStory) -> tuple[int, int, float]:
    return (-LEVELS.index(story.priority) if story.priority in LEVELS else 0,
            -len(story.sources), -story.last_seen)


@dataclass(slots=True)
class DigestState:
    digest: str  # "hourly" | "daily"
    start: float
    end: float
    stories: dict[str, DigestStory] = field(default_factory=dict)

    def add(self, alert: Alert) -> None:
        """Fold one live alert (opened, update, surge) into its story's line."""
        t = alert.received_at or alert.updated_at
        line = self.stories.get(alert.story_id)
        if line is None:
            line = DigestStory(story_id=alert.story_id, title=alert.title, url=alert.url,
                               priority=alert.priority, alerts=0, sources=[],
                               first_seen=t, last_seen=t, alert_id=alert.alert_id)
            self.stories[alert.story_id] = line
        line.alerts += 1
        line.title, line.url = alert.title or line.title, alert.url or line.url
        if LEVELS.index(alert.priority) > LEVELS.index(line.priority):
            line.priority = alert.priority
        line.sources = list(dict.fromkeys([*line.sources, *alert.sources]))[:50]
        line.first_seen, line.last_seen = min(line.first_seen, t), max(line.last_seen, t)
        if len(self.stories) > MAX_STORIES:
            worst = max(self.stories.values(), key=_rank)
            del self.stories[worst.story_id]

    def due(self, event_time: float, wall_time: float, idle_since: float,
            idle_seconds: float = IDLE_SECONDS) -> bool:
        """Whether the period is over: by event time, or by the wall clock when the
        partition has been idle ``idle_seconds`` (``idle_since``: wall time of its last
        event)."""
        if event_time >= self.end + GRACE_SECONDS:
            return True
        return wall_time - idle_since >= idle_seconds and wall_time >= self.end + GRACE_SECONDS

    def ranked(self) -> list[DigestStory]:
        return sorted(self.stories.values(), key=_rank)

    def to_dict(self) -> dict[str, Any]:
        return {"d": self.digest, "s": self.start, "e": self.end,
                "st": [asdict(line) for line in self.stories.values()]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DigestState:
        lines = [DigestStory(**line) for line in data.get("st", [])]
        return cls(str(data["d"]), float(data["s"]), float(data["e"]),
                   {line.story_id: line for line in lines})


def digest_id(watch_id: str, digest: str, start: float) -> str:
    return stable_id("digest", watch_id, digest, str(int(start)))


def digest_alert(state: DigestState, watch_id: str, watch_name: str, now: float) -> Alert:
    """The digest record of a closed period (``kind: "digest"``)."""
    ranked = state.ranked()
    sources = list(dict.fromkeys(s for line in ranked for s in line.sources))[:50]
    top = ranked[0].priority if ranked else "routine"
    key = f"{state.digest}:{int(state.start)}"
    return Alert(alert_id=digest_id(watch_id, state.digest, state.start), kind="digest",
                 revision=1, watch_id=watch_id, watch_name=watch_name, story_id="",
                 article_id=key, title=f"{watch_name}: {len(ranked)} stories, {state.digest} "
                 f"digest", url=None, source=None, published_at=None, sources=sources,
                 article_ids=[], terms=[], matches=[], opened_at=state.start,
                 updated_at=now, received_at=state.end,
                 story_ids=[line.story_id for line in ranked], priority=top,
                 priority_reason=f"its highest-ranked story is {top}",
                 digest_period=state.digest, digest_start=state.start, digest_end=state.end,
                 digest_stories=ranked)
