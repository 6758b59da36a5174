"""Story clustering: single-pass assignment of articles to story centroids.

Each story keeps a *centroid*: the sum of its articles' L2-normalised term vectors
(``terms.term_vector``), pruned to its ``CENTROID_TERMS`` heaviest terms. A new article is
compared with the centroids that share at least one of its terms, found through an inverted
index term -> stories, looked up with the article's ``QUERY_TERMS`` heaviest terms only;
terms whose posting list is longer than ``MAX_POSTINGS`` are skipped (too common in the
current window to tell stories apart). Postings hold each term's centroid weight divided by
the centroid's norm, so the sums are partial cosines with no per-story look-up. The
``SHORTLIST`` stories with the best partial cosine get a full cosine. So the cost per article
is bounded by QUERY_TERMS x MAX_POSTINGS + SHORTLIST x TOP_TERMS, whatever the window size
(8 x 100 + 4 x 40; 12 x 150 + 8 x 40 before: the smaller bounds change B-cubed F1 by
<= 0.001 on the labelled sets, where no posting list reaches 100).

Score = cosine(article, centroid) * time factor, where the time factor is
``1 / (1 + gap / TIME_SCALE)`` and ``gap`` is how far the article's publication time lies
outside the story's publication range; when either is unknown (an undated article, a story
of undated articles) the factor is 1: a missing date is no evidence either way.
When the article and the story both mention years (``terms.years``: "2013" in a dateline or
"since 2022") and share none, the score is also multiplied by ``1 - YEAR_CONFLICT``: two
look-alike events are often years apart (ECB+ B-cubed F1 0.903 -> 0.910 with it, shuffled
orders 0.886 -> 0.894).
``first_seen``/``last_seen`` are arrival times, for consumers' story summaries. The best
story with score >= ``THRESHOLD`` wins (ties go to the smaller story id, so the choice never
depends on dict order); otherwise the article
opens a new story. Headline-only articles use ``TITLE_ONLY_THRESHOLD``: a 5-word vector
shares few terms with any centroid, so its cosine runs low even against its own story.
Thresholds were tuned on ECB+ (full text) and the UCI slice (headlines); see
``bench/eval_stories.py``. A centroid is dominated by rare terms (names, places, bigrams such as
"dong jun"), which is what separates two look-alike events of one topic (two rehab check-ins
of two different actresses share "rehab", not the names).
"""

from __future__ import annotations

import itertools
import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import mul
from typing import Any

from agents.dedup.terms import top
from agents.signals.velocity import Velocity

__all__ = ["THRESHOLD", "TITLE_ONLY_THRESHOLD", "CENTROID_TERMS", "Story", "StoryClusterer"]

THRESHOLD = 0.17  # 0.2 before full-text vectors weighed words by idf squared
TITLE_ONLY_THRESHOLD = 0.1
CENTROID_TERMS = 80
CENTROID_DECIMALS = 4
MAX_POSTINGS = 100
QUERY_TERMS = 8
SHORTLIST = 4
TIME_SCALE = 24 * 3600.0
MAX_SOURCES = 50
# Event-time cue from the text: when an article and a story both mention years and share none
# (a 2013 dateline against a story whose texts speak of 2005 and 2008), the score is
# multiplied by 1 - YEAR_CONFLICT. A story keeps how many of its articles mention each year,
# for its MAX_STORY_YEARS most mentioned years.
YEAR_CONFLICT = 0.3
MAX_STORY_YEARS = 8
_ZEROS = itertools.repeat(0.0)  # the default of every centroid look-up


@dataclass(slots=True)
class Story:
    story_id: str
    first_seen: float
    last_seen: float
    count: int = 0
    sources: list[str] = field(default_factory=list)
    centroid: dict[str, float] = field(default_factory=dict)
    norm: float = 0.0
    published_first: float | None = None  # range of its dated articles' publication times
    published_last: float | None = None
    years: dict[str, int] = field(default_factory=dict)  # year -> articles mentioning it
    velocity: Velocity = field(default_factory=Velocity)  # arrivals by event time

    def to_dict(self) -> dict[str, Any]:
        return {
            "f": self.first_seen,
            "l": self.last_seen,
            "pf": self.published_first,
            "pl": self.published_last,
            "n": self.count,
            "src": self.sources,
            "c": self.centroid,
            "y": self.years,
            "v": self.velocity.to_dict(),
        }

    @classmethod
    def from_dict(cls, story_id: str, data: dict[str, Any]) -> Story:
        centroid = {sys.intern(str(t)): float(w) for t, w in data["c"].items()}
        return cls(
            story_id=story_id,
            first_seen=float(data["f"]),
            last_seen=float(data["l"]),
            count=int(data["n"]),
            sources=[str(s) for s in data["src"]],
            centroid=centroid,
            norm=_norm(centroid),
            published_first=data.get("pf"),
            published_last=data.get("pl"),
            years={str(y): int(n) for y, n in (data.get("y") or {}).items()},
            velocity=Velocity.from_dict(data.get("v")),
        )


def _norm(vec: dict[str, float]) -> float:
    weights = list(vec.values())
    return math.sqrt(sum(map(mul, weights, weights)))


def _time_factor(story: Story, t: float | None) -> float:
    if t is None or story.published_first is None or story.published_last is None:
        return 1.0
    gap = max(0.0, story.published_first - t, t - story.published_last)
    return 1.0 / (1.0 + gap / TIME_SCALE)


class StoryClusterer:
    """Story centroids plus the inverted index used to find candidate stories."""

    __slots__ = ("_postings", "stories")

    def __init__(self) -> None:
        self.stories: dict[str, Story] = {}
        # term -> {story id: that term's weight in the story's centroid / the centroid's norm}
        self._postings: dict[str, dict[str, float]] = {}

    def best(
        self, vec: dict[str, float], t: float | None, *, title_only: bool = False,
        years: frozenset[str] = frozenset(),
    ) -> tuple[str | None, float]:
        """The story this article vector belongs to (or None) and its score."""
        best_id: str | None = None
        best_score = 0.0
        weights = list(vec.values())
        for story_id in self._shortlist(vec):
            story = self.stories[story_id]
            dot = sum(map(mul, weights, map(story.centroid.get, vec, _ZEROS)))
            score = dot / story.norm * _time_factor(story, t)
            if years and story.years and years.isdisjoint(story.years):
                score *= 1.0 - YEAR_CONFLICT
            if score > best_score or (score == best_score and best_id and story_id < best_id):
                best_id, best_score = story_id, score
        if best_score < (TITLE_ONLY_THRESHOLD if title_only else THRESHOLD):
            return None, best_score
        return best_id, best_score

    def _shortlist(self, vec: dict[str, float]) -> list[str]:
        """Stories worth a full cosine: the best partial cosines over the article's
        ``QUERY_TERMS`` heaviest terms (``vec`` is heaviest first). Postings hold centroid
        weights already divided by the centroid's norm, so the sums need no story look-up."""
        partial: dict[str, float] = {}
        get = partial.get
        postings = self._postings
        for term, weight in itertools.islice(vec.items(), QUERY_TERMS):
            posting = postings.get(term)
            if not posting or len(posting) > MAX_POSTINGS:
                continue
            if not partial:
                partial = {sid: weight * w for sid, w in posting.items()}
                get = partial.get
                continue
            for story_id, w in posting.items():
                partial[story_id] = get(story_id, 0.0) + weight * w
        if len(partial) > SHORTLIST:
            floor = sorted(partial.values(), reverse=True)[SHORTLIST - 1]
            ranked = sorted((-dot, sid) for sid, dot in partial.items() if dot >= floor)
        else:
            ranked = sorted((-dot, sid) for sid, dot in partial.items())
        # The id breaks ties: posting order must not decide anything.
        return [story_id for _, story_id in ranked[:SHORTLIST]]

    def add(self, story_id: str, vec: dict[str, float], published: float | None, now: float,
            source: str | None, years: frozenset[str] = frozenset(),
            received: float | None = None) -> Story:
        """Add an article to a story (creating it) and update its centroid. ``received``:
        the article's event time (``received_at``), ``now`` when unknown."""
        story = self.stories.get(story_id)
        if story is None:
            story = Story(story_id, first_seen=now, last_seen=now)
            self.stories[story_id] = story
        self.count(story, published, now, source, received)
        if years:
            counted = dict(story.years)
            for year in years:
                counted[year] = counted.get(year, 0) + 1
            # The most mentioned years, ties to the earlier year: bounded, deterministic.
            story.years = dict(sorted(counted.items(), key=lambda yn: (-yn[1], yn[0]))
                               [:MAX_STORY_YEARS])
        merged = dict(story.centroid)
        for term, weight in vec.items():
            # Interned: thousands of centroids share their terms' strings.
            term = sys.intern(term)
            merged[term] = merged.get(term, 0.0) + weight
        # Rounded in memory, so the persisted centroid (orjson keeps floats exactly) is the
        # one in use and a restore stays exact; 4 decimals halve a story's bytes.
        kept = top(merged.items(), CENTROID_TERMS)
        self._set_centroid(story, {
            t: r for t, w in kept.items() if (r := round(w, CENTROID_DECIMALS))
        })
        return story

    def count(self, story: Story, published: float | None, now: float,
              source: str | None, received: float | None = None) -> None:
        """Count one more copy in a story without touching its centroid."""
        story.count += 1
        story.velocity.observe(received or now, source)
        story.first_seen = min(story.first_seen, now)
        story.last_seen = max(story.last_seen, now)
        if published is not None:
            low, high = story.published_first, story.published_last
            story.published_first = published if low is None else min(low, published)
            story.published_last = published if high is None else max(high, published)
        if source and source not in story.sources and len(story.sources) < MAX_SOURCES:
            story.sources.append(source)

    def put(self, story: Story) -> None:
        """Insert or replace a story as restored from state."""
        self.drop(story.story_id)
        self.stories[story.story_id] = story
        self._index(story.story_id, story.centroid)

    def drop(self, story_id: str) -> None:
        story = self.stories.pop(story_id, None)
        if story is not None:
            self._unindex(story_id, story.centroid)

    def _set_centroid(self, story: Story, centroid: dict[str, float]) -> None:
        self._unindex(story.story_id, [t for t in story.centroid if t not in centroid])
        story.centroid = centroid
        story.norm = _norm(centroid)
        self._index(story.story_id, centroid)

    def _index(self, story_id: str, centroid: dict[str, float]) -> None:
        postings = self._postings
        scale = 1.0 / (_norm(centroid) or 1.0)
        for term, weight in centroid.items():
            posting = postings.get(term)
            if posting is None:
                postings[term] = {story_id: weight * scale}
            else:
                posting[story_id] = weight * scale

    def _unindex(self, story_id: str, terms: Iterable[str]) -> None:
        for term in terms:
            posting = self._postings.get(term)
            if posting is None:
                continue
            posting.pop(story_id, None)
            if not posting:
                del self._postings[term]

    def __len__(self) -> int:
        return len(self.stories)
