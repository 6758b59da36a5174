"""Records on wirewatch's topics: the public contract with downstream consumers.

One ``Article`` travels the whole pipeline and gains fields stage by stage:

    clean  -> id, url, source, title, text, published_at, language, received_at
    tag    -> entities, keywords, categories, watch_hits
    dedup  -> story_id, duplicate_of, story

``Alert``, ``Watch`` and ``DeadLetter`` are records of their own. Every record is JSON
(orjson) on the wire and carries ``schema_version``; new fields may be added with a
default, fields are never renamed or retyped within one schema version.

Plain dataclasses rather than ``faust.Record``: topics carry raw bytes that our own code
decodes, so a foreign or corrupt message becomes a dead letter instead of a decode error
that crashes the agent (faust raises those inside the stream iterator).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson

from streams.errors import BadRecord

__all__ = [
    "SCHEMA_VERSION",
    "Alert",
    "DigestStory",
    "Article",
    "DeadLetter",
    "Entity",
    "Match",
    "Signal",
    "StorySummary",
    "TrendRecord",
    "Watch",
    "WatchHit",
    "decode",
    "encode",
    "stable_id",
]

# 2: WatchHit lost ``matches`` (news.tagged and news.stories records were ~30x the article at
# 100,000 watches); the alert still carries them. Records of schema 1 still decode.
SCHEMA_VERSION = 2


@dataclass(slots=True)
class Entity:
    """A named entity found in an article."""

    name: str
    kind: str  # "person" | "org" | "place"
    count: int = 1


@dataclass(slots=True)
class Match:
    """One place where a watch's term matched: offsets are into ``field`` of the article."""

    term: str
    field: str  # "title" | "text"
    start: int
    end: int
    snippet: str


@dataclass(slots=True)
class WatchHit:
    """A watch that the article hits, and the query's terms that matched (as written). Where
    they matched (offsets, snippets) is on the ``Alert``: schema 1 carried it here too."""

    watch_id: str
    watch_name: str
    terms: list[str]


@dataclass(slots=True)
class StorySummary:
    """Running summary of the story an article belongs to, as of this article. The pace
    fields count on event time (articles' ``received_at``) in the 15 minutes and the hour up
    to the newest article (``agents/signals/velocity.py``); "new" sources wrote their first
    article on the story in the window."""

    first_seen: float
    last_seen: float
    article_count: int
    sources: list[str]
    first_received: float = 0.0  # event time (received_at) of its first article; 0: unknown
    articles_15m: int = 0
    sources_15m: int = 0
    new_sources_15m: int = 0
    articles_1h: int = 0
    sources_1h: int = 0
    new_sources_1h: int = 0


@dataclass(slots=True)
class Article:
    """A news article, enriched stage by stage."""

    id: str
    title: str
    text: str
    url: str | None = None
    source: str | None = None
    published_at: str | None = None  # ISO-8601, UTC when the input said so
    language: str | None = None  # ISO 639-1, or None when undetermined
    received_at: float = 0.0  # unix seconds the raw message was published
    authors: list[str] = field(default_factory=list)  # as the page or publisher names them
    canonical_url: str | None = None  # the page's own <link rel=canonical>/og:url, absolute
    stage_times: dict[str, float] = field(default_factory=dict)  # stage -> unix seconds done
    # tag
    entities: list[Entity] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    watch_hits: list[WatchHit] = field(default_factory=list)
    # dedup
    story_id: str | None = None
    duplicate_of: str | None = None
    story: StorySummary | None = None
    schema_version: int = SCHEMA_VERSION

    def published_timestamp(self) -> float | None:
        """``published_at`` as unix seconds (naive means UTC), or None if absent or unreadable."""
        if not self.published_at:
            return None
        try:
            parsed = datetime.fromisoformat(self.published_at)
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()


@dataclass(slots=True)
class Signal:
    """The numbers that raised a surge, spike or trend alert: what the window saw, what was
    normal before it, and what it had to reach."""

    name: str  # "surge" | "spike" | "trend"
    window: str  # "15m" | "1h" | "1d"
    value: float
    baseline: float
    threshold: float
    detail: str = ""


@dataclass(slots=True)
class DigestStory:
    """One story of a digest: its latest title and link, its highest priority, how many live
    alerts it raised in the period, its sources, when it was first and last seen then."""

    story_id: str
    title: str
    url: str | None
    priority: str
    alerts: int
    sources: list[str]
    first_seen: float
    last_seen: float
    alert_id: str = ""  # the watch's live alert on the story


@dataclass(slots=True)
class Alert:
    """One alert per watch and story: ``kind`` is "opened" the first time, then "update", or
    "surge" for the update that finds the story surging (``signal`` has the numbers);
    "summary" folds a burst that a watch's rate limit held back (see agents/alert/ratelimit).
    The signals stage adds "spike" (a watch's hits against its baseline; no story) and
    "digest" (a period's stories, ``digest_*``)
    ``priority`` is "flash", "urgent" or "routine" (agents/signals/priority.py)."""

    alert_id: str
    kind: str  # "opened" | "update" | "summary"
    revision: int  # 1 when opened, +1 per update: (alert_id, revision) is unique
    watch_id: str
    watch_name: str
    story_id: str
    article_id: str  # the article that caused this revision
    title: str
    url: str | None
    source: str | None
    published_at: str | None
    sources: list[str]
    article_ids: list[str]
    terms: list[str]
    matches: list[Match]
    opened_at: float
    updated_at: float
    received_at: float  # of the article that caused this revision, for end-to-end latency
    story_ids: list[str] = field(default_factory=list)  # kind "summary": the stories held
    held_alerts: int = 0  # kind "summary": how many alerts the rate limit held back
    priority: str = "routine"
    priority_reason: str = ""
    signal: Signal | None = None  # kinds "surge", "spike", "trend"
    digest_period: str | None = None  # kind "digest": "hourly" | "daily"
    digest_start: float | None = None  # the period, in unix seconds of event time
    digest_end: float | None = None
    digest_stories: list[DigestStory] = field(default_factory=list)  # ranked by priority
    schema_version: int = SCHEMA_VERSION


@dataclass(slots=True)
class Watch:
    """A watched topic: a query (see agents/watch/query.py), and optionally where to POST its
    alerts and how many alerts it may raise per rate window (None: the configured default)."""

    id: str
    name: str
    query: str
    created_at: float = 0.0
    webhook_url: str | None = None
    rate_limit: int | None = None
    # Signals (issue 23; agents/watch/definitions.py WATCH_OPTIONS checks them):
    priority: str | None = None  # "flash" | "urgent" | "routine": the least its alerts get
    digest: str | None = None  # "hourly" | "daily": also one digest record per period
    live: bool = True  # False: digests only, no live alerts
    webhook_format: str = "json"  # "json" | "slack" (Block Kit) | "teams" (Adaptive Card)
    spike_hours: int | None = None  # an hour's hits against the previous N hours (12)
    spike_days: int | None = None  # a day's hits against the previous N days (14)
    trend_alerts: bool = False  # an alert when an entity its query names starts trending
    schema_version: int = SCHEMA_VERSION


@dataclass(slots=True)
class TrendRecord:
    """An entity trending at the end of a window of event time (news.trends, keyed by the
    entity's key): its mentions in the last hour against its mean per hour before
    (agents/trends/core.py has the score). ``trend_id`` derives from the key and the window,
    so a repeat after a crash is recognisable."""

    trend_id: str
    key: str  # "kind:folded name"
    name: str
    kind: str  # "person" | "org" | "place"
    window_end: float
    mentions_1h: float
    baseline_per_hour: float
    baseline_hours: int
    score: float
    rank: int  # 1 = the strongest trend of the window
    trending_since: float  # window end when its current run of windows began
    schema_version: int = SCHEMA_VERSION


@dataclass(slots=True)
class DeadLetter:
    """A message a stage could not process, with everything needed to replay it."""

    stage: str
    reason: str
    error: str
    topic: str
    partition: int
    offset: int
    key: str | None  # the original key, decoded as UTF-8 with replacement
    payload_b64: str  # the original value, base64, truncated to the size limit
    payload_size: int  # size of the original value in bytes
    failed_at: float
    schema_version: int = SCHEMA_VERSION


R = TypeVar("R")

# Nested record types per field, so decode() can rebuild dataclasses from dicts.
_NESTED: dict[type, dict[str, type]] = {
    Article: {"entities": Entity, "watch_hits": WatchHit, "story": StorySummary},
    Alert: {"matches": Match, "signal": Signal, "digest_stories": DigestStory},
}


def encode(record: Any) -> bytes:
    """Serialise a record (dataclass) to JSON bytes."""
    return orjson.dumps(record)


@functools.cache
def _field_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls))


def _build(cls: type[R], data: Any) -> R:
    if not isinstance(data, dict):
        raise BadRecord(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
    nested = _NESTED.get(cls, {})
    names = _field_names(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in names:
            continue  # a newer producer's extra field: ignore, as the contract allows
        inner = nested.get(key)
        if inner is not None and value is not None:
            if isinstance(value, list):
                value = [_build(inner, item) for item in value]
            else:
                value = _build(inner, value)
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field is missing
        raise BadRecord(f"{cls.__name__}: {exc}") from None


def decode(cls: type[R], payload: bytes) -> R:
    """Parse JSON bytes into a record of type ``cls``, or raise ``BadRecord``."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise BadRecord(f"{cls.__name__}: not JSON ({exc})") from None
    return _build(cls, data)


def stable_id(*parts: str, length: int = 16) -> str:
    """A deterministic id from its parts: the same input always gives the same id,
    so a redelivered message produces the same record downstream."""
    digest = hashlib.blake2b("\x1f".join(parts).encode("utf-8"), digest_size=16).hexdigest()
    return digest[:length]
