"""Alert decisions: one alert per watch and story, opened once and then updated.

Pure functions over an ``AlertState`` kept per (story, watch). The first article of a story
that hits a watch opens the alert; each later, different article of the same story updates
it (same ``alert_id``, ``revision`` + 1, sources grow). The same article seen again (a
redelivery after a crash) changes nothing and emits nothing, so alerts are idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streams.records import Alert, Article, WatchHit, stable_id

__all__ = ["AlertState", "alert_id_for", "decide", "MAX_TRACKED_ARTICLES", "MAX_SOURCES"]

#: Articles and sources remembered per alert; beyond that the lists stop growing (the
#: revision still counts), so one huge story cannot blow up state or alert size.
MAX_TRACKED_ARTICLES = 200
MAX_SOURCES = 50


@dataclass(slots=True)
class AlertState:
    alert_id: str
    watch_id: str
    story_id: str
    revision: int
    opened_at: float
    updated_at: float
    sources: list[str] = field(default_factory=list)
    article_ids: list[str] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)


def alert_id_for(watch_id: str, story_id: str) -> str:
    """Deterministic: a redelivered article yields the same alert id."""
    return stable_id("alert", watch_id, story_id)


def _add(items: list[str], new: list[str], cap: int) -> list[str]:
    out = list(items)
    for item in new:
        if item not in out and len(out) < cap:
            out.append(item)
    return out


def decide(state: AlertState | None, article: Article, hit: WatchHit,
           now: float) -> tuple[AlertState, Alert] | None:
    """The new state and the alert to emit, or ``None`` when nothing changes. The alert's
    ``matches`` are left empty: the agent fills them (``WatchMatcher.evidence``) only for the
    alerts it sends, not for those a rate limit holds back."""
    story_id = article.story_id or article.id
    if state is not None and article.id in state.article_ids:
        return None  # seen: a redelivery, or an update already emitted
    source = [article.source] if article.source else []
    if state is None:
        state = AlertState(alert_id=alert_id_for(hit.watch_id, story_id), watch_id=hit.watch_id,
                           story_id=story_id, revision=1, opened_at=now, updated_at=now,
                           sources=source, article_ids=[article.id], terms=list(hit.terms))
        kind = "opened"
    else:
        state = AlertState(alert_id=state.alert_id, watch_id=state.watch_id,
                           story_id=state.story_id, revision=state.revision + 1,
                           opened_at=state.opened_at, updated_at=now,
                           sources=_add(state.sources, source, MAX_SOURCES),
                           article_ids=_add(state.article_ids, [article.id],
                                            MAX_TRACKED_ARTICLES),
                           terms=_add(state.terms, hit.terms, 100))
        kind = "update"
    alert = Alert(alert_id=state.alert_id, kind=kind, revision=state.revision,
                  watch_id=hit.watch_id, watch_name=hit.watch_name, story_id=story_id,
                  article_id=article.id, title=article.title, url=article.url,
                  source=article.source, published_at=article.published_at,
                  sources=list(state.sources), article_ids=list(state.article_ids),
                  terms=list(hit.terms), matches=[], opened_at=state.opened_at,
                  updated_at=now, received_at=article.received_at)
    return state, alert
