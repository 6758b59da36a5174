"""Watched topics: parsing, the registry, and matching an article against every watch.

A watch's query is one phrase or several joined by `` OR `` (quotes optional):
``Taiwan Strait``, ``"crisis communications" OR "crisis-communications"``. Matching is on
folded tokens (``streams.text``), so case, hyphens, punctuation, quotes and diacritics do
not matter: "crisis-communications" matches the watch "crisis communications" and
"Taiwan Strait's" matches "Taiwan Strait".

The matcher indexes every phrase by its first token, so an article costs one dict lookup
per token however many watches there are. Tagging runs it (stateless, parallel); alerting
keeps the state. A fuller query language (AND/NOT/NEAR, fields) is issue 4.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from streams.errors import WatchError
from streams.records import Match, Watch, WatchHit, stable_id
from streams.text import Token, normalize, token_spans, tokens

__all__ = ["parse_terms", "make_watch", "load_watch_file", "WatchMatcher", "WatchRegistry",
           "MAX_QUERY_CHARS"]

MAX_QUERY_CHARS = 1000
MAX_TERMS = 50
MAX_MATCHES_PER_WATCH = 10
SNIPPET_RADIUS = 80
_OR = re.compile(r"\s+OR\s+")


def parse_terms(query: str) -> list[str]:
    """The phrases of a query, as written (without quotes); raises ``WatchError``."""
    if len(query) > MAX_QUERY_CHARS:
        raise WatchError(f"query is {len(query)} characters; the limit is {MAX_QUERY_CHARS}")
    terms = [part.strip().strip("\"'“”‘’").strip() for part in _OR.split(query.strip())]
    terms = [t for t in terms if tokens(t)]
    if not terms:
        raise WatchError(f"query {query!r} has no words to match")
    if len(terms) > MAX_TERMS:
        raise WatchError(f"query has {len(terms)} phrases; the limit is {MAX_TERMS}")
    return terms


def make_watch(name: str, query: str | None = None, *, created_at: float | None = None) -> Watch:
    """A validated watch; its id derives from the folded name, so adding it twice is a no-op."""
    query = name if query is None else query
    parse_terms(query)
    if not tokens(name):
        raise WatchError("a watch needs a name with at least one word")
    return Watch(id=stable_id("watch", normalize(name), length=12), name=name.strip(),
                 query=query.strip(), created_at=time.time() if created_at is None else created_at)


def load_watch_file(path: Path) -> list[Watch]:
    """Watches from a text file: one per line, ``name: query`` or just ``query``; # comments."""
    watches: list[Watch] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, query = line.partition(":")
        try:
            watches.append(make_watch(name, query if sep else None, created_at=0.0))
        except WatchError as exc:
            raise WatchError(f"{path}:{number}: {exc}") from None
    return watches


@dataclass(frozen=True, slots=True)
class _Phrase:
    watch_id: str
    term: str
    tokens: tuple[str, ...]


def _snippet(text: str, start: int, end: int) -> str:
    left = max(0, start - SNIPPET_RADIUS)
    right = min(len(text), end + SNIPPET_RADIUS)
    # Widen to word boundaries so a snippet never starts or ends mid-word.
    while left > 0 and not text[left - 1].isspace():
        left -= 1
    while right < len(text) and not text[right].isspace():
        right += 1
    body = " ".join(text[left:right].split())
    return ("…" if left > 0 else "") + body + ("…" if right < len(text) else "")


class WatchMatcher:
    """An immutable index of watches; ``match`` finds every watch an article hits."""

    def __init__(self, watches: Iterable[Watch]) -> None:
        self.watches: dict[str, Watch] = {w.id: w for w in watches}
        self._by_first: dict[str, list[_Phrase]] = defaultdict(list)
        for watch in self.watches.values():
            for term in parse_terms(watch.query):
                phrase = _Phrase(watch.id, term, tuple(tokens(term)))
                self._by_first[phrase.tokens[0]].append(phrase)

    def __len__(self) -> int:
        return len(self.watches)

    def _scan(self, field: str, text: str, found: dict[str, list[Match]]) -> None:
        spans: list[Token] = token_spans(text)
        words = [t.text for t in spans]
        for i, word in enumerate(words):
            for phrase in self._by_first.get(word, ()):
                n = len(phrase.tokens)
                if tuple(words[i:i + n]) != phrase.tokens:
                    continue
                matches = found.setdefault(phrase.watch_id, [])
                if len(matches) < MAX_MATCHES_PER_WATCH:
                    start, end = spans[i].start, spans[i + n - 1].end
                    matches.append(Match(term=phrase.term, field=field, start=start, end=end,
                                         snippet=_snippet(text, start, end)))

    def match(self, title: str, text: str) -> list[WatchHit]:
        if not self._by_first:
            return []
        found: dict[str, list[Match]] = {}
        self._scan("title", title, found)
        self._scan("text", text, found)
        hits = []
        for watch_id, matches in found.items():
            watch = self.watches[watch_id]
            terms = list(dict.fromkeys(m.term for m in matches))
            hits.append(WatchHit(watch_id=watch_id, watch_name=watch.name, terms=terms,
                                 matches=matches))
        hits.sort(key=lambda h: h.watch_name)
        return hits


class WatchRegistry:
    """The current set of watches; a change rebuilds the matcher and swaps it in whole,
    so a match in progress never sees half an update."""

    def __init__(self, watches: Iterable[Watch] = ()) -> None:
        self._watches: dict[str, Watch] = {w.id: w for w in watches}
        self.matcher = WatchMatcher(self._watches.values())

    def apply(self, watch_id: str, watch: Watch | None) -> None:
        """Add or replace a watch, or remove it (``None``: a tombstone on news.watches)."""
        if watch is None:
            if self._watches.pop(watch_id, None) is None:
                return
        else:
            parse_terms(watch.query)
            self._watches[watch_id] = watch
        self.matcher = WatchMatcher(self._watches.values())

    def get(self, watch_id: str) -> Watch | None:
        return self._watches.get(watch_id)

    def __len__(self) -> int:
        return len(self._watches)
