"""Weighted term vectors for story clustering, with a background IDF that needs no training.

* IDF comes from ``wordfreq``: ``idf(w) = IDF_CEILING - zipf(w)`` where zipf is log10 of the
  word's frequency per billion words of general English. So "the" (7.7) weighs ~0,
  "president" (5.5) ~2.5, "taiwan" (4.0) ~4 and unknown names (0) ``IDF_CEILING``. Tokens
  with ``idf < MIN_IDF`` (function words, "said", "new"...) and one-letter tokens are dropped.
  Lookups are cached per process: the vocabulary of a news stream is small.
* A full text (not a headline with its URL slug) weighs each word by its IDF squared, an
  unknown word's IDF capped and a year's boosted first (see ``full_text_weight``).
* TF is sublinear (1 + ln tf); title tokens count ``TITLE_BOOST`` times, because the headline
  names the event and a headline-only article has nothing else.
* Adjacent pairs of kept tokens, both with idf >= ``BIGRAM_MIN_IDF``, add a bigram term
  ("dong jun", "betty ford") weighing the mean IDF of its words times ``BIGRAM_WEIGHT``:
  names and fixed phrases identify an event better than their words do apart.
  Only pairs touching one of the article's ``TOP_TERMS`` heaviest words are counted: a pair
  occurs at most as often as either of its words, so any other bigram weighs no more than
  a word outside the top and cannot make the cut (exact; a unit test checks it against
  counting every pair). That halves the cost of a 400-word article.
* Entities from the tag stage (``article.entities``: canonical names, so "Fed" and
  "Federal Reserve" give the same term) add one term each, ``ENTITY_PREFIX`` + the folded
  name, weighing ``ENTITY_WEIGHT * (1 + ln mentions) * max idf of the name's words``.
  They matter for headlines (UCI +0.001 at 0.5; 1.0 would give +0.005, not adopted: tuned on
  the test set). A full text's words weigh their IDF squared, so there its entity terms
  rarely make the kept terms (ECB+ is the same at 0 and 1.0): the names are in the text.
* The vector keeps its ``TOP_TERMS`` heaviest terms and is L2-normalised.
* A headline-only article (no body: aggregator and RSS feeds) takes the words of its URL's
  slug as its body (``slug_words``): editors write slugs as keyword summaries, often the
  original headline before a rewrite ("...-plosser-stimulus-economy-20140310" under "Fed
  official says weak data caused by weather"). UCI headlines: B-cubed F1 0.760 -> 0.767.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain, compress, pairwise
from operator import itemgetter, mul

from agents.dedup import minhash
from streams.text import tokens
from streams.words import zipf

__all__ = [
    "IDF_CEILING", "MIN_IDF", "TOP_TERMS", "Bag", "bag_of_words", "idf", "slug_words",
    "term_vector", "cosine", "full_text_weight", "is_year", "years",
]

IDF_CEILING = 8.0
MIN_IDF = 2.0
TITLE_BOOST = 2  # an int: counts stay integers
BIGRAM_WEIGHT = 1.0
BIGRAM_MIN_IDF = 2.0  # 3.0 halves the bigrams but cost 0.003 B3 F1 on ECB+
TOP_TERMS = 40
ENTITY_WEIGHT = 0.5
ENTITY_PREFIX = "="  # entity terms ("=tara reid") never collide with words or bigrams
# A full-text article weighs each word by idf ** 2 (idf * idf), not idf: a long text holds many
# mid-IDF words shared by two look-alike events ("heavyweight", "endangered species"), and
# squaring lets the rare names and details that tell them apart lead the vector. A year
# ("2013") first counts YEAR_BOOST times its idf: the year a text mentions dates its event.
# Headline-only articles keep plain idf (5 words: squaring leaves one word; UCI F1 0.741).
# A word unknown to wordfreq (zipf 0, idf IDF_CEILING) first counts as UNKNOWN_IDF, the idf of
# the rarest word it knows (zipf 1.01): an unknown token is as often an HTML remnant, a typo or
# two words run together ("junlloyd") as a rare name, and squared it would outweigh every name
# wordfreq knows (64 against 49). ECB+ F1 at THRESHOLD 0.17: 0.910 (uncapped 0.904 at 0.16;
# a cap of 6.0 loses 0.009: ECB+ also tells its look-alike events apart by one-off names).
YEAR_BOOST = 1.5
UNKNOWN_IDF = 7.0
MAX_YEARS = 8  # an article's years kept for the story's year check (the latest)

_IDF_CACHE: dict[str, float] = {}
_IDF_CACHE_MAX = 500_000  # bounded: a stream of garbage tokens must not grow memory forever


def idf(word: str) -> float:
    """Background inverse document frequency of a folded token."""
    value = _IDF_CACHE.get(word)
    if value is None:
        value = max(0.0, IDF_CEILING - zipf(word))
        if len(_IDF_CACHE) >= _IDF_CACHE_MAX:
            _IDF_CACHE.clear()
        _IDF_CACHE[word] = value
    return value


# word -> (its idf, or 0.0 for a word the vectors drop; its MinHash token hash): one cache,
# so each distinct word of an article costs one look-up in a big, cache-cold dict.
_WORDS: dict[str, tuple[float, int]] = {}


def word_info(word: str) -> tuple[float, int]:
    """A word's kept IDF (0.0: dropped from vectors) and its MinHash token hash, cached:
    the batch vocabulary (``agents.dedup.batch``) asks again for every word after it is
    cleared, and a wordfreq look-up costs tens of µs."""
    found = _WORDS.get(word)
    if found is not None:
        return found
    value = idf(word)
    found = (0.0 if value < MIN_IDF or len(word) < 2 else value, minhash.token_hash(word))
    if len(_WORDS) >= _IDF_CACHE_MAX:
        _WORDS.clear()
    _WORDS[word] = found
    return found


@dataclass(slots=True)
class Bag:
    """An article's words, each looked up once for both the term vector and MinHash."""

    counts: Counter[str]  # word -> count, title words counted TITLE_BOOST times
    kept_idf: list[float]  # per word of ``counts``, in its order; 0.0 = dropped
    hashes: dict[str, int]  # word -> token hash; a small dict, hot in cache for the shingles


def bag_of_words(title_words: list[str], body_words: list[str]) -> Bag:
    counts = _counts(title_words, body_words)
    found = list(map(_WORDS.get, counts))  # C-level look-ups; None for new words
    if None in found:
        found = [word_info(w) if f is None else f for w, f in zip(counts, found, strict=True)]
    return Bag(
        counts,
        list(map(itemgetter(0), found)),  # type: ignore[arg-type]
        dict(zip(counts, map(itemgetter(1), found), strict=True)),  # type: ignore[arg-type]
    )


_ENTITIES: dict[str, tuple[str, float]] = {}  # entity name -> (term, idf)
_SUBLINEAR = [0.0] + [1.0 + math.log(n) for n in range(1, 1024)]


def _counts(title_words: list[str], body_words: list[str]) -> Counter[str]:
    words: Counter[str] = Counter(body_words)  # Counter runs in C
    for word in title_words:
        words[word] += TITLE_BOOST
    return words


def _pair_counts(
    title_words: list[str], body_words: list[str], heavy: dict[str, float]
) -> Counter[tuple[str, str]]:
    """Counts of the adjacent pairs that touch a word of ``heavy`` (title pairs boosted),
    in text order. The body's pairs are picked and counted by C-level built-ins."""
    last = len(body_words) - 1
    at = list(compress(range(len(body_words)), map(heavy.__contains__, body_words)))
    starts = sorted({i - 1 for i in at if i} | {i for i in at if i < last})
    get = body_words.__getitem__
    pairs: Counter[tuple[str, str]] = Counter(
        zip(map(get, starts), map(get, [i + 1 for i in starts]), strict=True)
    )
    for first, second in pairwise(title_words):
        if first in heavy or second in heavy:
            pairs[(first, second)] += TITLE_BOOST
    return pairs


def entity(name: str) -> tuple[str, float]:
    """An entity name's term and the max idf of its words (cached per process)."""
    found = _ENTITIES.get(name)
    if found is None:
        parts = tokens(name)
        found = (entity_term(parts), max(map(idf, parts), default=0.0))
        if len(_ENTITIES) >= _IDF_CACHE_MAX:
            _ENTITIES.clear()
        _ENTITIES[name] = found
    return found


def _sublinear(counts: Counter[str], words: Iterable[str]) -> list[float]:
    """1 + ln(count) of each word, from a table for the usual small counts."""
    table = _SUBLINEAR
    found = list(map(counts.__getitem__, words))
    if max(found, default=0) < len(table):
        return list(map(table.__getitem__, found))
    return [1.0 + math.log(n) for n in found]


def term_vector(
    title_words: list[str],
    body_words: list[str],
    entities: Iterable[tuple[str, int]] = (),
    bag: Bag | None = None,
    full_text: bool | None = None,
) -> dict[str, float]:
    """Top ``TOP_TERMS`` TF-IDF weights of an article, L2-normalised, heaviest first.
    ``entities`` are (canonical name, mentions) pairs from the tag stage; ``bag`` is
    ``bag_of_words(title_words, body_words)`` when the caller has it already; ``full_text``
    (default: ``body_words`` is not empty) says the body is a real text, not a URL slug."""
    if bag is None:
        bag = bag_of_words(title_words, body_words)
    words, values = bag.counts, bag.kept_idf
    kept = {w: v for w, v in zip(words, values, strict=True) if v}
    if full_text is None:
        full_text = bool(body_words)
    if full_text:
        kept = {w: full_text_weight(w, v) for w, v in kept.items()}
    weights = dict(zip(kept, map(mul, _sublinear(words, kept), kept.values()), strict=True))
    if len(weights) > TOP_TERMS:
        # Only the TOP_TERMS heaviest words (ties included) can be in the vector.
        floor = sorted(weights.values(), reverse=True)[TOP_TERMS - 1]
        weights = {w: x for w, x in weights.items() if x >= floor}
    if BIGRAM_WEIGHT > 0 and weights:
        # A pair occurs at most as often as either word, so (with BIGRAM_WEIGHT <= 1) a
        # bigram weighs at most as much as its heavier word: a bigram of two words outside
        # the TOP_TERMS heaviest words cannot reach the top; only the rest are counted.
        half = BIGRAM_WEIGHT / 2
        # Only pairs of two kept, adjacent words: a dropped word breaks the phrase.
        rare = kept if BIGRAM_MIN_IDF <= MIN_IDF else {
            w: v for w, v in kept.items() if v >= BIGRAM_MIN_IDF
        }
        log = math.log
        for (first, second), n in _pair_counts(title_words, body_words, weights).items():
            a = rare.get(first)
            if a is None:
                continue
            b = rare.get(second)
            if b is not None:
                weights[f"{first} {second}"] = (1.0 + log(n)) * (a + b) * half
    if ENTITY_WEIGHT > 0:
        for name, mentions in entities:
            term, value = entity(name)
            if value >= MIN_IDF:
                weight = ENTITY_WEIGHT * (1.0 + math.log(max(1, mentions))) * value
                weights[term] = max(weight, weights.get(term, 0.0))
    return normalised(top(weights.items(), TOP_TERMS))


def full_text_weight(word: str, value: float) -> float:
    """A full text's weight of a kept word of idf ``value``: (capped, year-boosted idf) ** 2."""
    value = min(value, UNKNOWN_IDF)
    if is_year(word):
        value *= YEAR_BOOST
    return value * value


_YEARS = frozenset(str(year) for year in range(1950, 2050))  # the years of modern news


def is_year(word: str) -> bool:
    """A folded token that reads as a year of modern news (1950-2049)."""
    return word in _YEARS


def years(*words: Iterable[str]) -> frozenset[str]:
    """The years these lists of an article's words mention (at most ``MAX_YEARS``, the
    latest)."""
    found = _YEARS.intersection(chain(*words))  # in C: an article has hundreds of words
    return frozenset(sorted(found)[-MAX_YEARS:]) if len(found) > MAX_YEARS else frozenset(found)


_SLUG_SEPARATORS = re.compile(r"[-_+]")
_PAGE_SUFFIX = re.compile(r"\.(?:s?html?|php\d?|aspx?|cms|story|jsp|cfm)$", re.IGNORECASE)
SLUG_MIN_WORDS = 3  # fewer is a section name ("world", "tech-news"), not a summary
MAX_URL_CHARS = 2048


def slug_words(url: str | None) -> list[str]:
    """The folded words of a URL's slug: the path segment of the most hyphen- or
    underscore-separated words, ids and numbers left out; [] when it has fewer than
    ``SLUG_MIN_WORDS`` words. The host never counts: it names the outlet, not the event."""
    if not url or len(url) > MAX_URL_CHARS:
        return []
    path = url.partition("://")[2].partition("/")[2].partition("?")[0].partition("#")[0]
    best: list[str] = []
    for segment in path.replace("\\", "/").split("/"):
        words = [w for w in _SLUG_SEPARATORS.split(_PAGE_SUFFIX.sub("", segment)) if w.isalpha()]
        if len(words) > len(best):
            best = words
    return tokens(" ".join(best)) if len(best) >= SLUG_MIN_WORDS else []


def entity_term(parts: list[str]) -> str:
    """The term of an entity name, from the name's folded tokens."""
    return ENTITY_PREFIX + " ".join(parts)


def top(items: Iterable[tuple[str, float]], k: int) -> dict[str, float]:
    """The k heaviest terms, heaviest first. Ties keep input order, which is a function of
    the input (text order, or a centroid's persisted order), so results are deterministic."""
    # == heapq.nlargest(k, ...) (documented equivalent, ties included), but a C-level sort
    # is ~2x faster for the few hundred items of an article or a centroid update.
    return dict(sorted(items, key=itemgetter(1), reverse=True)[:k])


def normalised(vec: dict[str, float]) -> dict[str, float]:
    norm = math.sqrt(sum(w * w for w in vec.values()))
    if norm == 0:
        return {}
    return {t: w / norm for t, w in vec.items()}


def cosine(a: dict[str, float], b: dict[str, float]) -> float:
    """Cosine of two sparse vectors (any norms)."""
    if len(a) > len(b):
        a, b = b, a
    dot = sum(w * b.get(t, 0.0) for t, w in a.items())
    if dot == 0:
        return 0.0
    na = math.sqrt(sum(w * w for w in a.values()))
    nb = math.sqrt(sum(w * w for w in b.values()))
    return dot / (na * nb)
