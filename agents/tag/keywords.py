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
from itertools import compress, pairwise

from agents.wordlists import load_words
from streams.text import tokens
from streams.words import zipf

__all__ = ["keywords", "keywords_of", "STOPWORDS"]

# Words that are never keywords: function words, "said", dates...
STOPWORDS = load_words("agents.tag", "stopwords")
_PHRASE_BONUS = 1.5
_MIN_LEN = 3
_MAX_IDF = 8.0  # Zipf frequencies are >= 0
# Every word seen so far -> its idf, or _NOT_A_KEYWORD (a stopword, a number, too short).
_idf_of: dict[str, float] = {}
_NOT_A_KEYWORD = -1.0
_SEEN_MAX = 1 << 18


def _idf(word: str) -> float:
    return max(0.0, _MAX_IDF - zipf(word))


def _useful(word: str) -> bool:
    return (
        len(word) >= _MIN_LEN
        and word not in STOPWORDS
        and (word.isalpha() or not any(c.isdigit() for c in word))
    )


def _learn(word: str) -> float:
    idf = _idf_of[word] = _idf(word) if _useful(word) else _NOT_A_KEYWORD
    return idf


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
    if len(_idf_of) >= _SEEN_MAX:  # only here, so that every word of this article stays known
        _idf_of.clear()
    scores = _scores(counts, [word for word, n in counts.items() if n > 1])
    if scores:
        _score_phrases(words, counts, set(scores), scores)
    # A word seen once scores its idf, at most _MAX_IDF: when ``limit`` terms score more, none
    # of them can make the cut and their idf lookups (most of an article's words) are skipped.
    if sum(score > _MAX_IDF for score in scores.values()) < limit:
        scores.update(_scores(counts, [word for word, n in counts.items() if n == 1]))
    if not scores:
        return []
    # Best first, ties by term; only scores > 0. Only terms scoring at least the limit-th best
    # score can make the cut: sort plain floats to find that score, then sort just those terms.
    values = sorted(scores.values(), reverse=True)
    floor = max(values[min(limit, len(values)) - 1], 1e-300)
    ranked = sorted([(-score, term) for term, score in scores.items() if score >= floor])
    return [term for _, term in ranked[:limit]]


def _scores(counts: dict[str, int], words: list[str]) -> dict[str, float]:
    """count * idf of each of ``words`` that can be a keyword."""
    known = _idf_of.get
    scores: dict[str, float] = {}
    for word in words:
        idf = known(word)
        if idf is None:
            idf = _learn(word)
        if idf >= 0.0:
            scores[word] = counts[word] * idf
    return scores


def _score_phrases(words: list[str], counts: dict[str, int], repeated: set[str],
                   scores: dict[str, float]) -> None:
    """Add the repeated two-word phrases to ``scores``; they absorb their words' counts.

    A phrase has to repeat to beat its words, so both its words repeat too: only the pairs of
    repeated useful words are counted, picked in C. One byte per word says "repeated"; an AND
    of that byte string with itself shifted by one word (as big integers) marks the pairs.
    """
    flags = int.from_bytes(bytes(map(repeated.__contains__, words)), "little")
    pairs = Counter(compress(pairwise(words), (flags & (flags >> 8)).to_bytes(len(words), "little")))
    idf_of = _idf_of
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
