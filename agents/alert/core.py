"""Alert decisions: one alert per watch and story, opened once and then updated.

Pure functions over an ``AlertState`` kept per (story, watch). The first article of a story
that hits a watch opens the alert; each later, different article of the same story updates
it (same ``alert_id``, ``revision`` + 1, sources grow). The same article seen again (a
redelivery after a crash, or a re-run backfill) changes nothing and emits nothing, so alerts
are idempotent, however long the story.

Seen articles are recorded in ``AlertState.seen``, apart from ``article_ids`` (the capped list
shown on the alert): a 48-bit xxh3 hash per article id, base64 (8 characters, no padding),
concatenated. It is found and grown as a string, without decoding; a hash collision can only
hold back an update (odds 4096 / 2^48, 1 in 7 * 10^10, per article at the cap), never
repeat one.

The record is bounded: an alert stops at ``MAX_SEEN_ARTICLES`` articles, and the alerts of
one story at ``MAX_SEEN_PER_STORY`` between them. After that every
article of its story, new or redelivered, changes nothing and emits nothing (a record that
forgot ids could not tell a redelivery from a new article). States written before ``seen``
existed derive it from ``article_ids``, which holds only their first ``MAX_TRACKED_ARTICLES``:
in such a state, a redelivered later article can still make one revision, once.
"""

from __future__ import annotations

from base64 import b64encode
from collections.abc import Iterable
from dataclasses import dataclass, field

import xxhash

from agents.signals.priority import priority_of
from agents.signals.surge import check_surge
from streams.records import Alert, Article, WatchHit, stable_id

__all__ = ["AlertState", "alert_id_for", "decide", "story_is_full", "MAX_TRACKED_ARTICLES",
           "MAX_SOURCES", "MAX_SEEN_ARTICLES", "MAX_SEEN_PER_STORY"]

#: Articles and sources remembered per alert; beyond that the lists stop growing (the
#: revision still counts), so one huge story cannot blow up state or alert size.
MAX_TRACKED_ARTICLES = 200
MAX_SOURCES = 50
#: Articles an alert takes in all (their tokens in ``AlertState.seen``, 32 KB when full); then
#: it is final. Held alerts (rate limit) count too: their state moves on.
MAX_SEEN_ARTICLES = 4096
#: Articles all the alerts of one story take between them (1 MiB of tokens): a story's
#: states are one table value, and hundreds of watches may hit one story.
MAX_SEEN_PER_STORY = 131_072
#: One seen article in ``AlertState.seen``: 6 bytes of hash are exactly 8 base64 characters,
#: so the tokens line up and the record needs no padding, separator or decoding.
TOKEN_CHARS = 8


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
    seen: str = ""  # the articles taken, one token each (``_token``); the agent stores it
    surging: bool = False  # the story is in a surge (agents/signals/surge.py)

    def __post_init__(self) -> None:
        if not self.seen and self.article_ids:  # a state stored before ``seen`` existed
            self.seen = "".join(_token(article_id) for article_id in self.article_ids)


def _token(article_id: str) -> str:
    """A stable (unsalted, unlike ``hash()``) 48-bit hash of the id, as 8 base64 characters."""
    return b64encode(xxhash.xxh3_64_digest(article_id.encode("utf-8"))[:6]).decode("ascii")


def _has(seen: str, token: str) -> bool:
    """Whether ``token`` is one of the tokens of ``seen``: a match across two tokens is not."""
    at = seen.find(token)
    while at != -1 and at % TOKEN_CHARS:
        at = seen.find(token, at + 1)
    return at != -1


def alert_id_for(watch_id: str, story_id: str) -> str:
    """Deterministic: a redelivered article yields the same alert id."""
    return stable_id("alert", watch_id, story_id)


def _add(items: list[str], new: list[str], cap: int) -> list[str]:
    out = list(items)
    for item in new:
        if item not in out and len(out) < cap:
            out.append(item)
    return out


def story_is_full(states: Iterable[AlertState]) -> bool:
    """Whether the alerts of one story (one table value) have taken ``MAX_SEEN_PER_STORY``
    articles between them: their records then stop growing, as one alert's does at
    ``MAX_SEEN_ARTICLES``, so a story hitting hundreds of watches stays far under the
    producer's record limit (8 MiB)."""
    return sum(len(state.seen) for state in states) >= MAX_SEEN_PER_STORY * TOKEN_CHARS


def decide(state: AlertState | None, article: Article, hit: WatchHit,
           now: float, *, story_full: bool = False, floor: str | None = None,
           stream_rate: float = 0.0) -> tuple[AlertState, Alert] | None:
    """The new state and the alert to emit, or ``None`` when nothing changes. The alert's
    ``matches`` are left empty: the agent fills them (``WatchMatcher.evidence``) only for the
    alerts it sends, not for those a rate limit holds back. ``story_full``: ``story_is_full``
    of the story's states, which then take no new article. ``floor``: the watch's own
    priority; ``stream_rate``: the stream's normal pace of new sources (``StreamPace``).
    Signals are judged on event time, the article's ``received_at`` (``now`` without one)."""
    story_id = article.story_id or article.id
    token = _token(article.id)
    if state is not None and _has(state.seen, token):
        return None  # seen: a redelivery, or an update already emitted
    if story_full or (state is not None and len(state.seen) >= MAX_SEEN_ARTICLES * TOKEN_CHARS):
        return None  # final: a fuller record would grow without bound, a pruned one forget
    source = [article.source] if article.source else []
    event_time = article.received_at or now
    surge = (None if article.story is None else
             check_surge(article.story, event_time, stream_rate,
                         state is not None and state.surging))
    if state is None:
        state = AlertState(alert_id=alert_id_for(hit.watch_id, story_id), watch_id=hit.watch_id,
                           story_id=story_id, revision=1, opened_at=now, updated_at=now,
                           sources=source, article_ids=[article.id], terms=list(hit.terms),
                           seen=token)
        kind = "opened"
    else:
        state = AlertState(alert_id=state.alert_id, watch_id=state.watch_id,
                           story_id=state.story_id, revision=state.revision + 1,
                           opened_at=state.opened_at, updated_at=now,
                           sources=_add(state.sources, source, MAX_SOURCES),
                           article_ids=_add(state.article_ids, [article.id],
                                            MAX_TRACKED_ARTICLES),
                           terms=_add(state.terms, hit.terms, 100), seen=state.seen + token)
        kind = "surge" if surge is not None and surge.fires else "update"
    state.surging = surge is not None and surge.surging
    priority = priority_of(article.story, event_time, surge=state.surging, floor=floor)
    alert = Alert(alert_id=state.alert_id, kind=kind, revision=state.revision,
                  watch_id=hit.watch_id, watch_name=hit.watch_name, story_id=story_id,
                  article_id=article.id, title=article.title, url=article.url,
                  source=article.source, published_at=article.published_at,
                  sources=list(state.sources), article_ids=list(state.article_ids),
                  terms=list(hit.terms), matches=[], opened_at=state.opened_at,
                  updated_at=now, received_at=article.received_at, priority=priority.level,
                  priority_reason=priority.reason,
                  signal=surge.signal if surge is not None and surge.fires else None)
    return state, alert
