"""Term vectors and MinHash signatures for a batch of articles, vectorised with numpy.

Equal, bit for bit, to ``terms.term_vector`` and ``minhash.signature`` article by article (a
unit test checks it), at a fraction of the cost: numpy's fixed cost per call (~1 µs) made a
per-article numpy version slower than the dict code, but over a batch of a few hundred
articles it is paid once, and what is left per article is its tokens, one C-level look-up
per token and building its vector dict.

Every word gets a process-local id (``Vocabulary``); ids only live inside one call, so the
vocabulary may be cleared when it is full and nothing persisted ever holds one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import compress, repeat
from operator import is_

import numpy as np

from agents.dedup import minhash, terms

__all__ = ["Document", "Vocabulary", "features"]

Document = tuple[list[str], list[str], list[tuple[str, int]]]  # title, body, entities
MAX_WORDS = 300_000
_SUBLINEAR = np.array(terms._SUBLINEAR)
_CHUNK_SHINGLES = 1 << 17  # a (64 x chunk) uint32 array stays ~32 MB


class Vocabulary:
    """Folded word -> id, with each word's kept IDF and MinHash token hash by id."""

    __slots__ = ("_index", "hashes", "kept_idf", "words", "year")

    def __init__(self) -> None:
        self._index: dict[str, int] = {}
        self.words: list[str] = []
        self.kept_idf = np.zeros(4096)
        self.hashes = np.zeros(4096, dtype=np.uint32)
        self.year = np.zeros(4096, dtype=bool)

    def ids(self, words: list[str]) -> np.ndarray:
        found = list(map(self._index.get, words))  # C-level look-ups; None for new words
        if None in found:
            if len(self.words) + len(words) > MAX_WORDS:
                self.__init__()  # type: ignore[misc]
                found = [None] * len(words)
            # Only the new words' places, found in C: a stream brings new names and numbers
            # in most batches, and a Python pass over every word of the batch cost 5 %.
            for at in compress(range(len(found)), map(is_, found, repeat(None))):
                found[at] = self._add(words[at])
        return np.array(found, dtype=np.int64)

    def _add(self, word: str) -> int:
        at = self._index.get(word)
        if at is not None:
            return at  # new to the vocabulary earlier in the same call
        at = len(self.words)
        if at == len(self.kept_idf):
            self.kept_idf = np.concatenate([self.kept_idf, np.zeros_like(self.kept_idf)])
            self.hashes = np.concatenate([self.hashes, np.zeros_like(self.hashes)])
            self.year = np.concatenate([self.year, np.zeros_like(self.year)])
        kept_idf, token_hash = terms.word_info(word)
        self.kept_idf[at] = kept_idf
        self.hashes[at] = token_hash
        self.year[at] = terms.is_year(word)
        self._index[word] = at
        self.words.append(word)
        return at


VOCABULARY = Vocabulary()


def features(
    docs: Sequence[Document], full_text: Sequence[bool] | None = None
) -> tuple[list[dict[str, float]], list[np.ndarray]]:
    """The term vector and the MinHash signature (of the body, or of the title when the body
    is empty) of each document. ``full_text`` per document: its body is a real text (as
    ``terms.term_vector``'s argument; default: the body is not empty)."""
    layout = _Layout(docs)
    vectors = _vectors(layout, docs, full_text)
    signatures = _signatures(layout)
    return vectors, signatures


class _Layout:
    """All documents' tokens in one array: per document its body, then its title
    ``TITLE_BOOST`` times (the counts boost titles by counting them again)."""

    def __init__(self, docs: Sequence[Document]) -> None:
        words: list[str] = []
        lengths: list[int] = []
        for title, body, _ in docs:
            words += body
            for _ in range(terms.TITLE_BOOST):
                words += title
            lengths.append(len(body))
            lengths.append(len(title))
        self.ids = VOCABULARY.ids(words)
        sizes = np.array(lengths, dtype=np.int64).reshape(-1, 2)
        self.body = sizes[:, 0]
        self.title = sizes[:, 1]
        per_doc = self.body + terms.TITLE_BOOST * self.title
        self.start = np.concatenate(([0], np.cumsum(per_doc)[:-1])).astype(np.int64)
        self.doc = np.repeat(np.arange(len(docs), dtype=np.int64), per_doc)
        # One segment per body and per title copy: pairs never cross a segment's end.
        segment_sizes = np.column_stack(
            [self.body] + [self.title] * terms.TITLE_BOOST
        ).ravel()
        self.segment = np.repeat(np.arange(len(segment_sizes)), segment_sizes)


def _distinct(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """np.unique(keys, return_index, return_inverse, return_counts), the index being each
    key's first occurrence (a stable sort keeps it first among equals)."""
    order = np.argsort(keys, kind="stable")
    ranked = keys[order]
    new = np.empty(len(ranked), dtype=bool)
    new[:1] = True
    np.not_equal(ranked[1:], ranked[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    inverse = np.empty(len(ranked), dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    return ranked[starts], order[starts], inverse, np.diff(starts, append=len(ranked))


def _sublinear(counts: np.ndarray) -> np.ndarray:
    """1 + ln(count), from the same table as ``terms`` so the floats are the same."""
    small = counts < len(_SUBLINEAR)
    if small.all():
        return _SUBLINEAR[counts]
    return np.where(small, _SUBLINEAR[np.minimum(counts, len(_SUBLINEAR) - 1)],
                    1.0 + np.log(np.maximum(counts, 1)))


def _rank_in_doc(doc: np.ndarray, weight: np.ndarray, order: np.ndarray) -> tuple[np.ndarray,
                                                                                  np.ndarray]:
    """Items sorted by document, weight (heaviest first), then ``order``; and each item's
    rank within its document in that sort."""
    by = np.lexsort((order, -weight, doc))
    sorted_doc = doc[by]
    first = np.empty(len(by), dtype=bool)
    first[:1] = True
    np.not_equal(sorted_doc[1:], sorted_doc[:-1], out=first[1:])
    group_start = np.maximum.accumulate(np.where(first, np.arange(len(by)), 0))
    return by, np.arange(len(by)) - group_start


def _vectors(layout: _Layout, docs: Sequence[Document],
             full_text: Sequence[bool] | None = None) -> list[dict[str, float]]:
    n_docs = len(docs)
    top = terms.TOP_TERMS
    words = VOCABULARY.words
    if len(layout.ids):
        width = len(VOCABULARY.words) + 1
        distinct, first, at, counts = _distinct(layout.doc * width + layout.ids)
        doc_of = distinct // width
        word_of = distinct % width
        idf = VOCABULARY.kept_idf[word_of]
        kept = idf > 0
        # As terms.full_text_weight: a full text's words weigh (capped, boosted idf) ** 2.
        full = layout.body > 0 if full_text is None else np.array(full_text, dtype=bool)
        capped = np.minimum(idf, terms.UNKNOWN_IDF)
        boosted = np.where(VOCABULARY.year[word_of], capped * terms.YEAR_BOOST, capped)
        idf = np.where(full[doc_of], boosted * boosted, idf)
        weight = _sublinear(counts) * idf
        # The TOP_TERMS-th heaviest kept word of each document, ties included, is its floor.
        kept_at = np.flatnonzero(kept)
        by, rank = _rank_in_doc(doc_of[kept_at], weight[kept_at], first[kept_at])
        floor = np.zeros(n_docs)
        at_floor = kept_at[by[rank == top - 1]]
        floor[doc_of[at_floor]] = weight[at_floor]
        heavy = kept & (weight >= floor[doc_of])
        chosen = np.flatnonzero(heavy)
        cand_doc = [doc_of[chosen]]
        cand_weight = [weight[chosen]]
        cand_order = [first[chosen]]
        cand_terms: list[str] = [words[i] for i in word_of[chosen].tolist()]
        if terms.BIGRAM_WEIGHT > 0:
            pairs = _bigrams(layout, at, idf, kept, heavy, doc_of, word_of)
            cand_terms += pairs[0]
            cand_doc.append(pairs[1])
            cand_weight.append(pairs[2])
            cand_order.append(pairs[3] + len(layout.ids))
        offset = 2 * len(layout.ids)
    else:
        cand_doc, cand_weight, cand_order, cand_terms, offset = [], [], [], [], 0
    named_doc, named_weight, named_terms = _entities(docs)
    cand_terms += named_terms
    cand_doc.append(np.array(named_doc, dtype=np.int64))
    cand_weight.append(np.array(named_weight))
    cand_order.append(offset + np.arange(len(named_doc), dtype=np.int64))
    all_doc = np.concatenate(cand_doc)
    all_weight = np.concatenate(cand_weight)
    by, rank = _rank_in_doc(all_doc, all_weight, np.concatenate(cand_order))
    picked = by[rank < top]
    picked_doc = all_doc[picked].tolist()
    picked_weight = all_weight[picked].tolist()
    picked_terms = [cand_terms[i] for i in picked.tolist()]
    vectors: list[dict[str, float]] = [{} for _ in range(n_docs)]
    bounds = np.searchsorted(picked_doc, np.arange(n_docs + 1)).tolist()
    for d in range(n_docs):
        lo, hi = bounds[d], bounds[d + 1]
        if lo == hi:
            continue
        ws = picked_weight[lo:hi]
        norm = math.sqrt(sum(w * w for w in ws))  # as terms.normalised sums: same float
        if norm:
            vectors[d] = {t: w / norm for t, w in zip(picked_terms[lo:hi], ws, strict=True)}
    return vectors


def _bigrams(
    layout: _Layout, at: np.ndarray, idf: np.ndarray, kept: np.ndarray, heavy: np.ndarray,
    doc_of: np.ndarray, word_of: np.ndarray,
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Adjacent pairs of kept words touching a heavy word, per document: terms, documents,
    weights and first-occurrence order (body pairs in text order, then title pairs; each
    title copy adds its pairs once, so they count TITLE_BOOST times)."""
    seg = layout.segment
    starts = np.flatnonzero(seg[:-1] == seg[1:])
    left, right = at[starts], at[starts + 1]
    wanted = kept[left] & kept[right] & (heavy[left] | heavy[right])
    left, right = left[wanted], right[wanted]
    if not len(left):
        empty = np.zeros(0, dtype=np.int64)
        return [], empty, np.zeros(0), empty
    width = len(idf)
    pairs, first, _, counts = _distinct(left * width + right)
    a, b = pairs // width, pairs % width
    weight = _sublinear(counts) * (idf[a] + idf[b]) * (terms.BIGRAM_WEIGHT / 2)
    words = VOCABULARY.words
    names = [f"{words[i]} {words[j]}"
             for i, j in zip(word_of[a].tolist(), word_of[b].tolist(), strict=True)]
    return names, doc_of[a], weight, first


def _entities(docs: Sequence[Document]) -> tuple[list[int], list[float], list[str]]:
    """Entity terms per document, as ``terms.term_vector`` weighs them."""
    out_doc: list[int] = []
    out_weight: list[float] = []
    out_terms: list[str] = []
    if terms.ENTITY_WEIGHT <= 0:
        return out_doc, out_weight, out_terms
    for d, (_, _, entities) in enumerate(docs):
        named: dict[str, float] = {}
        for name, mentions in entities:
            term, value = terms.entity(name)
            if value >= terms.MIN_IDF:
                weight = terms.ENTITY_WEIGHT * (1.0 + math.log(max(1, mentions))) * value
                named[term] = max(weight, named.get(term, 0.0))
        out_doc += [d] * len(named)
        out_weight += named.values()
        out_terms += named
    return out_doc, out_weight, out_terms


def _signatures(layout: _Layout) -> list[np.ndarray]:
    """MinHash signature per document over its body's tokens (its title's when the body is
    empty), the shingles of all documents hashed and minimised together."""
    n_docs = len(layout.body)
    size = np.where(layout.body > 0, layout.body, layout.title)
    begin = layout.start  # the body, or the first title copy right after an empty body
    signatures: list[np.ndarray] = [minhash.empty_signature()] * n_docs
    short = np.flatnonzero((size > 0) & (size < minhash.SHINGLE)).tolist()
    ids = layout.ids
    hashes = VOCABULARY.hashes
    for d in short:
        b = int(begin[d])
        signatures[d] = minhash.signature_of_hashes(hashes[ids[b:b + size[d]]].tolist())
    long_docs = np.flatnonzero(size >= minhash.SHINGLE)
    if not len(long_docs):
        return signatures
    n_shingles = size[long_docs] - minhash.SHINGLE + 1
    # Start positions of every shingle of every long document, in document order.
    offsets = np.repeat(begin[long_docs] - np.concatenate(([0], np.cumsum(n_shingles)[:-1])),
                        n_shingles) + np.arange(int(n_shingles.sum()))
    shingles = minhash.combine_shingles(
        [hashes[ids[offsets + k]] for k in range(minhash.SHINGLE)]
    )
    bounds = np.concatenate(([0], np.cumsum(n_shingles)))
    # Chunks of whole documents, so a (PERMUTATIONS x shingles) array stays bounded.
    lo = 0
    while lo < len(long_docs):
        hi = int(np.searchsorted(bounds, bounds[lo] + _CHUNK_SHINGLES, side="right")) - 1
        hi = max(hi, lo + 1)
        part = shingles[bounds[lo]:bounds[hi]]
        minima = minhash.permuted_minima(part, bounds[lo:hi] - bounds[lo])
        for k, d in enumerate(long_docs[lo:hi].tolist()):
            signatures[d] = minima[:, k].copy()
        lo = hi
    return signatures
