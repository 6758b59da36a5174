"""Keywords: TF-IDF over folded tokens, with English word frequencies as the background.

No training run and no corpus statistics to keep: ``wordfreq``'s Zipf frequency (log10 of
occurrences per billion words, plus 3) stands in for document frequency, so
``idf(w) = max(0, 8 - zipf(w))`` — "the" (7.7) is worth nothing, "hypersonic" (2.5) a lot.
Two-word phrases that repeat ("crisis communications") score as the mean idf of their words
times a bonus, and absorb the counts of the words they are made of, so a repeated phrase
outranks its parts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from itertools import compress, pairwise
from operator import and_

from agents.tag.words import tokens, zipf

__all__ = ["keywords", "keywords_of", "STOPWORDS"]

STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "said",
        "says",
        "say",
        "told",
        "tell",
        "added",
        "according",
        "year",
        "years",
        "month",
        "months",
        "week",
        "weeks",
        "day",
        "days",
        "time",
        "times",
        "new",
        "one",
        "two",
        "three",
        "first",
        "second",
        "last",
        "next",
        "also",
        "may",
        "might",
        "must",
        "shall",
        "could",
        "would",
        "like",
        "well",
        "even",
        "still",
        "many",
        "much",
        "made",
        "make",
        "makes",
        "get",
        "got",
        "going",
        "go",
        "goes",
        "went",
        "come",
        "came",
        "take",
        "took",
        "since",
        "however",
        "though",
        "although",
        "yet",
        "us",
        "s",
        "t",
        "re",
        "ve",
        "ll",
        "d",
        "m",
        "don",
        "didn",
        "doesn",
        "isn",
        "wasn",
        "aren",
        "weren",
        "won",
        "wouldn",
        "couldn",
        "shouldn",
        "mr",
        "mrs",
        "ms",
        "dr",
        "per",
        "cent",
        "percent",
        "around",
        "among",
        "within",
        "without",
        "via",
        "upon",
        "onto",
        "way",
        "ways",
        "part",
        "another",
        "including",
        "include",
        "includes",
        "include",
        "whether",
        "back",
        "ago",
        "told",
        "report",
        "reported",
        "reports",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "january",
        "february",
        "march",
        "april",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ]
)
_PHRASE_BONUS = 1.5
_MIN_LEN = 3
# Every word seen so far is in exactly one of these: its idf, or "not a keyword" (a stopword,
# a number, too short). Set operations on them find an article's new and useful words in C.
_idf_of: dict[str, float] = {}
_not_keywords: set[str] = set()
_SEEN_MAX = 1 << 18


def _idf(word: str) -> float:
    return max(0.0, 8.0 - zipf(word))


def _useful(word: str) -> bool:
    return (
        len(word) >= _MIN_LEN
        and word not in STOPWORDS
        and (word.isalpha() or not any(c.isdigit() for c in word))
    )


def _learn(words: Iterable[str]) -> None:
    if len(_idf_of) + len(_not_keywords) >= _SEEN_MAX:
        _idf_of.clear()
        _not_keywords.clear()
    for word in words:
        if _useful(word):
            _idf_of[word] = _idf(word)
        else:
            _not_keywords.add(word)


def keywords(title: str, text: str, limit: int = 10) -> list[str]:
    """The ``limit`` best keywords of an article, best first. The title counts twice."""
    title_tokens = tokens(title)
    return keywords_of([*title_tokens, *title_tokens, *tokens(text)], limit=limit)


def keywords_of(words: list[str], counts: dict[str, int] | None = None, limit: int = 10) -> list[str]:
    """``keywords`` from the folded tokens ``title + title + text`` (and, if the caller has
    it, ``Counter(words)``)."""
    if counts is None:
        counts = Counter(words)
    if limit < 1:
        return []
    idf_of = _idf_of
    # (set.difference with a set or dict argument iterates over the left-hand side only)
    new = set(counts).difference(idf_of).difference(_not_keywords)
    if new:
        _learn(new)
    useful = counts.keys() & idf_of.keys()  # iterates over the smaller side
    scores = {word: counts[word] * idf_of[word] for word in useful}
    # A phrase has to repeat to beat its words, so both its words repeat too: count only the
    # pairs of repeated useful words (selected in C: map, compress).
    repeated = {word for word in useful if counts[word] > 1}
    if repeated:
        flags = list(map(repeated.__contains__, words))
        pairs = Counter(compress(pairwise(words), map(and_, flags, flags[1:])))
        taken: dict[str, int] = {}
        for (first, second), n in pairs.items():
            if n > 1:
                scores[f"{first} {second}"] = n * _PHRASE_BONUS * (idf_of[first] + idf_of[second]) / 2
                taken[first] = taken.get(first, 0) + n
                taken[second] = taken.get(second, 0) + n
        for word, n in taken.items():  # a repeated phrase absorbs the counts of its words
            left = counts[word] - n
            if left > 0:
                scores[word] = left * idf_of[word]
            else:
                del scores[word]
    if not scores:
        return []
    # Best first, ties by term; only scores > 0. Only terms scoring at least the limit-th best
    # score can make the cut: sort plain floats to find that score, then sort just those terms.
    values = sorted(scores.values(), reverse=True)
    floor = max(values[min(limit, len(values)) - 1], 1e-300)
    ranked = sorted([(-score, term) for term, score in scores.items() if score >= floor])
    return [term for _, term in ranked[:limit]]
