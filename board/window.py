"""The board's recent window: alerts and story articles, bounded by count and by age. Pure.

What a desk sees comes from two topics, read by ``board/server.py``:

- ``news.alerts``: one card per ``alert_id``, showing its latest revision, with the last
  ``Bounds.max_revisions`` revisions as its history (which article made each, which sources it
  added). A repeated or older ``(alert_id, revision)`` (at-least-once delivery) changes nothing.
- ``news.stories``: the articles of each story (title, source, time, link, ``duplicate_of``)
  and dedup's running summary of the story (first and last seen, article count, sources).

Bounds: at most ``max_alerts`` alerts (the least recently updated go first), at most
``max_articles`` story articles (the oldest go first), and nothing older than
``max_age_seconds`` (by the time the record was written to its topic, ``at``).

Everything from a topic is checked here, field by field, because any producer may write
there: strings are cut to a length, lists to a count, numbers must be finite numbers, and
a link is kept only when it is an ``http(s)`` URL (``safe_url``); a record without the ids it
needs is refused (``add_*`` return None/False and count it in ``refused``). The page renders
every string as text (``textContent``), never as markup.

The views are plain dicts, ready for JSON: what ``/api/alerts``, the live events and
``/api/stories/ID`` send.
"""

from __future__ import annotations

import math
import re
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from streams.text import token_spans, tokens

__all__ = ["ALERT_KINDS", "KIND", "BoardWindow", "Bounds", "marked", "matches_search", "safe_url",
           "search_key"]

#: The kinds the page offers as filters from the start; any other kind a newer alert stage
#: sends (a lower-case word: "surge"...) is shown and filtered as it comes.
ALERT_KINDS = ("opened", "update", "summary")
KIND = re.compile(r"[a-z][a-z_]{0,19}")

MAX_ID_CHARS = 512
MAX_TITLE_CHARS = 1000
MAX_NAME_CHARS = 300
MAX_SOURCE_CHARS = 256
MAX_URL_CHARS = 2048
MAX_SNIPPET_CHARS = 2000
MAX_SOURCES = 50
MAX_TERMS = 50
MAX_MATCHES = 10
MAX_STORY_IDS = 50
MAX_TIME_CHARS = 100
#: Articles of one story listed by ``story()`` (the newest; the count says how many more).
MAX_STORY_LISTING = 500

_URL_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f-\x9f\\]")
_SCOPE = re.compile(r"^\s*(?:title|text|entity|source|lang)\s*:", re.I)


@dataclass(frozen=True, slots=True)
class Bounds:
    """How much the window holds (see the module docstring)."""

    max_alerts: int = 5000
    max_revisions: int = 32
    max_articles: int = 20_000
    max_age_seconds: float = 24 * 3600.0


# ------------------------------------------------------------------ checked values ---

def _text(value: object, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _opt_text(value: object, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    number = float(value)
    return number if math.isfinite(number) else 0.0


def _int(value: object, default: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        return default
    return value


def _strings(value: object, count: int, limit: int) -> list[str]:
    if not isinstance(value, list):
        return []
    return [item[:limit] for item in value[:count] if isinstance(item, str)]


def safe_url(value: object) -> str | None:
    """``value`` when it is an absolute http(s) URL with a host (and no whitespace, control
    characters or backslashes, which browsers read in their own ways), else None: a
    ``javascript:``, ``data:`` or relative link never becomes a live link on the page."""
    if not isinstance(value, str) or not value or len(value) > MAX_URL_CHARS:
        return None
    if _URL_FORBIDDEN.search(value):
        return None
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    return value


# ---------------------------------------------------------------------- highlights ---

@lru_cache(maxsize=4096)
def _term_tokens(term: str) -> tuple[list[str], bool]:
    """The folded tokens of a query term as written, and whether its last one is a prefix
    (``commun*``); a field scope (``title:``) and quotes are not part of it."""
    written = _SCOPE.sub("", term).strip()
    prefix = written.rstrip('"~ ').endswith("*")
    return tokens(written), prefix


def _token_hits(folded: str, want: str, prefix: bool) -> bool:
    if folded == want or (prefix and folded.startswith(want)):
        return True
    # simple English plurals, which the matcher may take (``strait~``, WIREWATCH_WATCH_PLURALS)
    return folded in (want + "s", want + "es") or (
        want.endswith("y") and folded == want[:-1] + "ies")


_ASCII_ALNUM = "A-Za-z0-9"
_NON_ASCII_LETTERS = re.compile(r"[^\x00-\x7f]")


def _word_pattern(word: str, last: bool, prefix: bool) -> str:
    if last and prefix:
        return re.escape(word) + f"[{_ASCII_ALNUM}]*"
    if last:  # the plurals _token_hits takes
        if word.endswith("y"):
            return re.escape(word[:-1]) + "(?:y|ies|ys)"
        return re.escape(word) + "(?:e?s)?"
    return re.escape(word)


@lru_cache(maxsize=4096)
def _term_regex(term: str) -> re.Pattern[str] | None:
    """A regex for the term over a snippet whose letters are all ASCII: there, folding is only
    lower-casing, a token is a run of ASCII letters and digits, and anything else separates
    tokens, so it matches the words ``token_spans`` would find."""
    words, prefix = _term_tokens(term)
    if not words or not all(w.isascii() for w in words):
        return None
    gap = f"[^{_ASCII_ALNUM}]+"
    body = gap.join(_word_pattern(w, i == len(words) - 1, prefix) for i, w in enumerate(words))
    return re.compile(f"(?<![{_ASCII_ALNUM}]){body}(?![{_ASCII_ALNUM}])", re.IGNORECASE)


def _ascii_letters_only(text: str) -> bool:
    return text.isascii() or not any(ch.isalnum() for ch in _NON_ASCII_LETTERS.findall(text))


def marked(snippet: str, terms: Iterable[str]) -> list[tuple[str, bool]]:
    """``snippet`` cut into (text, is_a_term) parts: the runs of words that are one of
    ``terms`` (folded as the matcher folds: case, diacritics, punctuation) are marked."""
    unique = tuple(dict.fromkeys(terms))
    if _ascii_letters_only(snippet) and all(_ascii_letters_only(t) for t in unique):
        ranges = [m.span() for term in unique if (regex := _term_regex(term)) is not None
                  for m in regex.finditer(snippet)]
        return _parts(snippet, ranges)
    return _marked_by_tokens(snippet, unique)


def _marked_by_tokens(snippet: str, unique: tuple[str, ...]) -> list[tuple[str, bool]]:
    """``marked`` for any text: its folded tokens (``token_spans``) against the terms'."""
    spans = token_spans(snippet)
    folded = [t.text for t in spans]
    ranges: list[tuple[int, int]] = []
    for term in unique:
        want, prefix = _term_tokens(term)
        n = len(want)
        if not n:
            continue
        for i in range(len(folded) - n + 1):
            if all(folded[i + k] == want[k] for k in range(n - 1)) and _token_hits(
                    folded[i + n - 1], want[-1], prefix):
                ranges.append((spans[i].start, spans[i + n - 1].end))
    return _parts(snippet, ranges)


def _parts(snippet: str, ranges: list[tuple[int, int]]) -> list[tuple[str, bool]]:
    ranges.sort()
    merged: list[tuple[int, int]] = []
    for start, end in ranges:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    parts: list[tuple[str, bool]] = []
    at = 0
    for start, end in merged:
        if start > at:
            parts.append((snippet[at:start], False))
        parts.append((snippet[start:end], True))
        at = end
    if at < len(snippet) or not parts:
        parts.append((snippet[at:], False))
    return parts


def search_key(*texts: str) -> str:
    """The folded words of ``texts``, each preceded by a space: ``matches_search`` looks for a
    query's words as a run in it (the last one as a prefix, for type-ahead)."""
    return "".join(" " + word for text in texts for word in tokens(text))


def matches_search(key: str, query: str) -> bool:
    words = tokens(query)
    return not words or (" " + " ".join(words)) in key


# ----------------------------------------------------------------------- the views ---

def _word(value: object, default: str) -> str:
    return value if isinstance(value, str) and KIND.fullmatch(value) else default


def _signal_view(data: object) -> dict[str, Any] | None:
    """The numbers behind a surge, spike or trend alert (``records.Signal``), if any."""
    if not isinstance(data, Mapping):
        return None
    return {"name": _word(data.get("name"), "signal"), "window": _text(data.get("window"), 20),
            "value": _number(data.get("value")), "baseline": _number(data.get("baseline")),
            "threshold": _number(data.get("threshold")),
            "detail": _text(data.get("detail"), MAX_TITLE_CHARS)}


def _alert_view(data: Mapping[str, Any]) -> dict[str, Any] | None:
    """The card of one alert record, checked; None without an alert id."""
    alert_id = _text(data.get("alert_id"), MAX_ID_CHARS)
    if not alert_id:
        return None
    terms = _strings(data.get("terms"), MAX_TERMS, MAX_NAME_CHARS)
    matches = []
    raw_matches = data.get("matches")
    for match in raw_matches[:MAX_MATCHES] if isinstance(raw_matches, list) else []:
        if not isinstance(match, Mapping):
            continue
        term = _text(match.get("term"), MAX_NAME_CHARS)
        snippet = _text(match.get("snippet"), MAX_SNIPPET_CHARS)
        matches.append({"term": term, "field": _text(match.get("field"), 20),
                        "parts": marked(snippet, [term, *terms])})
    article_ids = data.get("article_ids")
    return {
        "alert_id": alert_id,
        "kind": _word(data.get("kind"), "update"),
        "revision": max(1, _int(data.get("revision"), 1)),
        "watch_id": _text(data.get("watch_id"), MAX_ID_CHARS),
        "watch_name": _text(data.get("watch_name"), MAX_NAME_CHARS),
        "story_id": _text(data.get("story_id"), MAX_ID_CHARS),
        "article_id": _text(data.get("article_id"), MAX_ID_CHARS),
        "title": _text(data.get("title"), MAX_TITLE_CHARS),
        "url": safe_url(data.get("url")),
        "source": _opt_text(data.get("source"), MAX_SOURCE_CHARS),
        "published_at": _opt_text(data.get("published_at"), MAX_TIME_CHARS),
        "sources": _strings(data.get("sources"), MAX_SOURCES, MAX_SOURCE_CHARS),
        "article_count": len(article_ids) if isinstance(article_ids, list) else 0,
        "terms": terms,
        "matches": matches,
        "opened_at": _number(data.get("opened_at")),
        "updated_at": _number(data.get("updated_at")),
        "received_at": _number(data.get("received_at")),
        "held_alerts": max(0, _int(data.get("held_alerts"))),
        "story_ids": _strings(data.get("story_ids"), MAX_STORY_IDS, MAX_ID_CHARS),
        "priority": _word(data.get("priority"), "routine"),
        "priority_reason": _text(data.get("priority_reason"), MAX_NAME_CHARS),
        "signal": _signal_view(data.get("signal")),
    }


def _revision_entry(view: Mapping[str, Any], before: Sequence[str], at: float) -> dict[str, Any]:
    known = set(before)
    return {"revision": view["revision"], "kind": view["kind"],
            "article_id": view["article_id"], "title": view["title"], "url": view["url"],
            "source": view["source"], "sources": len(view["sources"]),
            "new_sources": [s for s in view["sources"] if s not in known],
            "updated_at": view["updated_at"], "at": at}


@dataclass(slots=True)
class _Card:
    view: dict[str, Any]
    history: list[dict[str, Any]]
    at: float
    search: str


@dataclass(slots=True)
class _Story:
    articles: dict[str, dict[str, Any]] = field(default_factory=dict)  # arrival order
    summary: dict[str, Any] | None = None


def _article_view(data: Mapping[str, Any], at: float) -> dict[str, Any] | None:
    article_id = _text(data.get("id"), MAX_ID_CHARS)
    story_id = _text(data.get("story_id"), MAX_ID_CHARS)
    if not article_id or not story_id:
        return None
    return {"id": article_id, "story_id": story_id,
            "title": _text(data.get("title"), MAX_TITLE_CHARS),
            "source": _opt_text(data.get("source"), MAX_SOURCE_CHARS),
            "url": safe_url(data.get("url")),
            "published_at": _opt_text(data.get("published_at"), MAX_TIME_CHARS),
            "received_at": _number(data.get("received_at")),
            "duplicate_of": _opt_text(data.get("duplicate_of"), MAX_ID_CHARS),
            "language": _opt_text(data.get("language"), 64),
            "at": at}


def _summary_view(data: object) -> dict[str, Any] | None:
    if not isinstance(data, Mapping):
        return None
    return {"first_seen": _number(data.get("first_seen")),
            "last_seen": _number(data.get("last_seen")),
            "article_count": max(0, _int(data.get("article_count"))),
            "sources": _strings(data.get("sources"), MAX_SOURCES, MAX_SOURCE_CHARS)}


# ---------------------------------------------------------------------- the window ---

class BoardWindow:
    """The recent alerts and story articles (see the module docstring). Not thread-safe:
    one event loop owns it."""

    def __init__(self, bounds: Bounds | None = None) -> None:
        self.bounds = bounds or Bounds()
        self.seq = 0  # bumped by every card change; events carry it
        self.refused = 0  # records without the ids they need
        self._cards: OrderedDict[str, _Card] = OrderedDict()  # least recently updated first
        self._by_story: dict[str, set[str]] = {}
        self._stories: dict[str, _Story] = {}
        self._articles: OrderedDict[tuple[str, str], float] = OrderedDict()  # arrival order

    # -- alerts --

    def add_alert(self, data: Mapping[str, Any], at: float, *, now: float | None = None
                  ) -> dict[str, Any] | None:
        """Take one record of news.alerts written at ``at`` (unix seconds); return its card
        (as ``card_view``) when it changed the window, else None (a repeat, an older revision,
        a record too old for the window or without an alert id)."""
        now = time.time() if now is None else now
        if at < now - self.bounds.max_age_seconds:
            return None
        view = _alert_view(data) if isinstance(data, Mapping) else None
        if view is None:
            self.refused += 1
            return None
        card = self._cards.get(view["alert_id"])
        if card is not None and view["revision"] <= card.view["revision"]:
            return None  # at-least-once: (alert_id, revision) seen already, or older
        before = card.view["sources"] if card is not None else []
        history = card.history if card is not None else []
        history.append(_revision_entry(view, before, at))
        del history[:-self.bounds.max_revisions]
        self.seq += 1
        view["seq"] = self.seq
        view["at"] = at
        if card is not None:
            self._unindex(card)
        key = search_key(view["title"], view["watch_name"], view["source"] or "",
                         " ".join(view["sources"]), " ".join(view["terms"]),
                         *("".join(text for text, _ in m["parts"]) for m in view["matches"]))
        card = _Card(view=view, history=history, at=at, search=key)
        self._cards[view["alert_id"]] = card
        self._cards.move_to_end(view["alert_id"])
        if view["story_id"]:
            self._by_story.setdefault(view["story_id"], set()).add(view["alert_id"])
        while len(self._cards) > self.bounds.max_alerts:
            self._unindex(self._cards.popitem(last=False)[1])
        return self.card_view(card)

    def _unindex(self, card: _Card) -> None:
        story = card.view["story_id"]
        ids = self._by_story.get(story)
        if ids is not None:
            ids.discard(card.view["alert_id"])
            if not ids:
                del self._by_story[story]

    @staticmethod
    def card_view(card: _Card, *, history: bool = False) -> dict[str, Any]:
        view = dict(card.view)
        view["revisions"] = len(card.history)
        if history:
            view["history"] = list(card.history)
        return view

    def alerts(self, *, watch: str | None = None, kind: str | None = None,
               since: float | None = None, until: float | None = None, text: str | None = None,
               before: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Cards newest first (by their last change), filtered: ``watch`` id, ``kind`` of the
        latest revision, last updated (``updated_at``, else ``at``) in ``[since, until]``,
        ``text`` among their words (title, watch, sources, terms, snippets), ``seq`` below
        ``before`` (the next page)."""
        out: list[dict[str, Any]] = []
        for card in reversed(self._cards.values()):
            view = card.view
            if before is not None and view["seq"] >= before:
                continue
            if watch and view["watch_id"] != watch:
                continue
            if kind and view["kind"] != kind:
                continue
            when = view["updated_at"] or card.at
            if (since is not None and when < since) or (until is not None and when > until):
                continue
            if text and not matches_search(card.search, text):
                continue
            out.append(self.card_view(card))
            if len(out) >= limit:
                break
        return out

    def changed_after(self, seq: int) -> list[dict[str, Any]]:
        """Cards changed after event ``seq``, oldest first (a reconnecting page's replay)."""
        found = [card for card in self._cards.values() if card.view["seq"] > seq]
        found.sort(key=lambda c: c.view["seq"])
        return [self.card_view(card) for card in found]

    def card(self, alert_id: str) -> dict[str, Any] | None:
        card = self._cards.get(alert_id)
        return None if card is None else self.card_view(card, history=True)

    def watch_hits(self) -> dict[str, dict[str, Any]]:
        """Per watch id: its alerts in the window, their revisions, the last change."""
        hits: dict[str, dict[str, Any]] = {}
        for card in self._cards.values():
            view = card.view
            entry = hits.setdefault(view["watch_id"], {"watch_name": view["watch_name"],
                                                       "alerts": 0, "revisions": 0,
                                                       "last_at": 0.0})
            entry["alerts"] += 1
            entry["revisions"] += len(card.history)
            entry["last_at"] = max(entry["last_at"], view["updated_at"] or card.at)
        return hits

    # -- stories --

    def add_article(self, data: Mapping[str, Any], at: float, *, now: float | None = None
                    ) -> bool:
        """Take one record of news.stories written at ``at``; True when it was new."""
        now = time.time() if now is None else now
        if at < now - self.bounds.max_age_seconds:
            return False
        view = _article_view(data, at) if isinstance(data, Mapping) else None
        if view is None:
            self.refused += 1
            return False
        key = (view["story_id"], view["id"])
        story = self._stories.setdefault(view["story_id"], _Story())
        summary = _summary_view(data.get("story"))
        if summary is not None:
            story.summary = summary
        if key in self._articles:
            return False  # a redelivered record
        story.articles[view["id"]] = view
        self._articles[key] = at
        while len(self._articles) > self.bounds.max_articles:
            self._drop_article(*self._articles.popitem(last=False)[0])
        return True

    def _drop_article(self, story_id: str, article_id: str) -> None:
        story = self._stories.get(story_id)
        if story is None:
            return
        story.articles.pop(article_id, None)
        if not story.articles:
            del self._stories[story_id]

    def story(self, story_id: str, *, limit: int = MAX_STORY_LISTING) -> dict[str, Any] | None:
        """A story as the page opens it: its articles in the window (oldest first, the last
        ``limit``), dedup's summary (first and last seen, count, sources) and every alert on
        it with its revision history. None when the window knows nothing of it."""
        story = self._stories.get(story_id)
        alert_ids = self._by_story.get(story_id, set())
        if story is None and not alert_ids:
            return None
        articles = sorted((story.articles.values() if story else ()),
                          key=lambda a: (a["received_at"] or a["at"], a["at"]))
        titles = {a["id"]: a["title"] for a in articles}
        listed = []
        for article in articles[-limit:]:
            item = dict(article)
            if item["duplicate_of"]:
                item["duplicate_of_title"] = titles.get(item["duplicate_of"])
            listed.append(item)
        summary = story.summary if story and story.summary else None
        times = [a["received_at"] or a["at"] for a in articles]
        sources = (summary["sources"] if summary and summary["sources"]
                   else list(dict.fromkeys(a["source"] for a in articles if a["source"])))
        alerts = sorted((self.card_view(self._cards[a], history=True) for a in alert_ids),
                        key=lambda v: (v["opened_at"], v["watch_name"]))
        return {
            "story_id": story_id,
            "first_seen": summary["first_seen"] if summary else (min(times) if times else None),
            "last_seen": summary["last_seen"] if summary else (max(times) if times else None),
            "article_count": summary["article_count"] if summary else len(articles),
            "sources": sources,
            "source_count": len(sources),
            "articles_in_window": len(articles),
            "articles": listed,
            "alerts": alerts,
        }

    # -- age and size --

    def expire(self, now: float | None = None) -> int:
        """Drop what is older than the window; return how many alerts and articles went."""
        now = time.time() if now is None else now
        cutoff = now - self.bounds.max_age_seconds
        dropped = 0
        for alert_id in [k for k, c in self._cards.items() if c.at < cutoff]:
            self._unindex(self._cards.pop(alert_id))
            dropped += 1
        for key in [k for k, at in self._articles.items() if at < cutoff]:
            del self._articles[key]
            self._drop_article(*key)
            dropped += 1
        return dropped

    def stats(self) -> dict[str, Any]:
        return {"alerts": len(self._cards), "articles": len(self._articles),
                "stories": len(self._stories), "seq": self.seq, "refused": self.refused,
                "max_alerts": self.bounds.max_alerts, "max_articles": self.bounds.max_articles,
                "max_revisions": self.bounds.max_revisions,
                "window_seconds": self.bounds.max_age_seconds}
