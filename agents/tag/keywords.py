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

from agents.tag.frequency import zipf
from streams.text import tokens

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
_idf_memo: dict[str, float] = {}
_useful_memo: dict[str, bool] = {}
_MEMO_MAX = 1 << 18


def _idf(word: str) -> float:
    return max(0.0, 8.0 - zipf(word))


def _useful(word: str) -> bool:
    return (
        len(word) >= _MIN_LEN
        and word not in STOPWORDS
        and (word.isalpha() or not any(c.isdigit() for c in word))
    )


def keywords(title: str, text: str, limit: int = 10) -> list[str]:
    """The ``limit`` best keywords of an article, best first. The title counts twice."""
    title_tokens = tokens(title)
    return keywords_of([*title_tokens, *title_tokens, *tokens(text)], limit=limit)


def keywords_of(words: list[str], counts: dict[str, int] | None = None, limit: int = 10) -> list[str]:
    """``keywords`` from the folded tokens ``title + title + text`` (and, if the caller has
    it, ``Counter(words)``)."""
    if counts is None:
        counts = Counter(words)
    useful_memo, idf_memo = _useful_memo, _idf_memo
    if len(useful_memo) >= _MEMO_MAX:
        useful_memo.clear()
    if len(idf_memo) >= _MEMO_MAX:
        idf_memo.clear()
    unigrams: dict[str, int] = {}
    for word, n in counts.items():
        good = useful_memo.get(word)
        if good is None:
            good = useful_memo[word] = _useful(word)
        if good:
            unigrams[word] = n
    scores: dict[str, float] = {}
    # A phrase has to repeat to beat its words: only pairs of useful words seen twice count.
    for (first, second), n in Counter(zip(words, words[1:])).items():
        if n < 2 or first not in unigrams or second not in unigrams:
            continue
        idf1 = idf_memo.get(first)
        if idf1 is None:
            idf1 = idf_memo[first] = _idf(first)
        idf2 = idf_memo.get(second)
        if idf2 is None:
            idf2 = idf_memo[second] = _idf(second)
        scores[f"{first} {second}"] = n * _PHRASE_BONUS * (idf1 + idf2) / 2
        unigrams[first] -= n
        unigrams[second] -= n
    for word, n in unigrams.items():
        if n > 0:
            idf = idf_memo.get(word)
            if idf is None:
                idf = idf_memo[word] = _idf(word)
            scores[word] = n * idf
    # Best first, ties by term. Only terms scoring at least the limit-th best score can make
    # the cut, so sort plain floats to find that score and then sort just those terms.
    values = sorted(scores.values(), reverse=True)
    if not values:
        return []
    floor = values[min(limit, len(values)) - 1] if limit > 0 else -1.0
    ranked = sorted((-score, term) for term, score in scores.items() if score >= floor)
    return [term for neg, term in ranked[:limit] if neg < 0]
