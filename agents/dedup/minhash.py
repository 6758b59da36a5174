"""Near-duplicate detection: MinHash signatures over word shingles, banded LSH lookup.

Approach
--------
* A document is the set of its ``SHINGLE``-word shingles over ``streams.text`` tokens
  (case, punctuation and diacritics folded). Documents shorter than one shingle use the
  whole token run as a single shingle.
* Tokens are hashed once with xxh32; shingle hashes are combined arithmetically in numpy
  (no per-shingle string building), which is what keeps a signature at a few hundred µs.
* ``PERMUTATIONS`` = 64 universal hash functions ``(a*x + b) mod (2**61 - 1)`` give a
  signature of 64 uint32 minima (256 bytes). The fraction of equal positions between two
  signatures estimates the Jaccard similarity of their shingle sets (std. error ≈ 0.06).
* LSH: ``BANDS`` = 16 bands of ``ROWS`` = 4 rows. Two documents become candidates when one
  band matches exactly; P(candidate) = 1 - (1 - J**4)**16, i.e. 0.99 at J = 0.7, 0.55 at
  J = 0.4, 0.04 at J = 0.2. Candidates are then verified against ``THRESHOLD``.

The constants are fixed (seeded) so signatures are identical across processes and restarts:
persisted signatures stay comparable with new ones.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import xxhash

__all__ = [
    "SHINGLE",
    "PERMUTATIONS",
    "BANDS",
    "ROWS",
    "THRESHOLD",
    "signature",
    "similarity",
    "LSHIndex",
]

SHINGLE = 3
PERMUTATIONS = 64
BANDS = 16
ROWS = 4
THRESHOLD = 0.6  # estimated Jaccard needed to call a candidate a near duplicate

_MERSENNE = np.uint64((1 << 61) - 1)
_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT = np.uint64(61)
_rng = np.random.default_rng(20240531)
# a < 2**31 and x < 2**32 keep a*x + b below 2**64: no uint64 overflow before the modulo.
_A = _rng.integers(1, 1 << 31, size=(PERMUTATIONS, 1), dtype=np.uint64)
_B = _rng.integers(0, 1 << 31, size=(PERMUTATIONS, 1), dtype=np.uint64)
# Odd multipliers that mix the token hashes of a shingle into one 32-bit value.
_MIX = np.array([0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D, 0x27D4EB2F, 0x165667B1], dtype=np.uint64)
_EMPTY = np.full(PERMUTATIONS, 0xFFFFFFFF, dtype=np.uint32)


_TOKEN_HASHES: dict[str, int] = {}
_TOKEN_HASHES_MAX = 500_000


def _token_hash(word: str) -> int:
    value = _TOKEN_HASHES.get(word)
    if value is None:
        if len(_TOKEN_HASHES) >= _TOKEN_HASHES_MAX:
            _TOKEN_HASHES.clear()
        # xxh32 rather than hash(): str hashes are salted per process, signatures persist.
        value = _TOKEN_HASHES[word] = xxhash.xxh32_intdigest(word.encode("utf-8"))
    return value


def _shingle_hashes(words: list[str]) -> np.ndarray:
    """32-bit hashes of the word shingles (order-sensitive within a shingle); repeats are
    left in: they cannot change a minimum."""
    found = list(map(_TOKEN_HASHES.get, words))  # C-level look-ups; None for new words
    if None in found:
        found = [_token_hash(w) if h is None else h for w, h in zip(words, found, strict=True)]
    hashes = np.array(found, dtype=np.uint64)
    if len(words) < SHINGLE:
        combined = np.zeros(1, dtype=np.uint64)
        for i, h in enumerate(hashes):
            combined = (combined * _MIX[i % len(_MIX)] + h) & _MASK32
        return combined
    n = len(words) - SHINGLE + 1
    combined = np.zeros(n, dtype=np.uint64)
    for i in range(SHINGLE):
        combined = ((combined ^ hashes[i : i + n]) * _MIX[i]) & _MASK32
    return combined


def signature(words: list[str]) -> np.ndarray:
    """MinHash signature (``PERMUTATIONS`` uint32) of a token list; all-ones when empty."""
    if not words:
        return _EMPTY.copy()
    x = _shingle_hashes(words)
    y = _A * x[np.newaxis, :] + _B  # < 2**63: no overflow
    # y mod (2**61 - 1) without a division: fold the bits above 61 back in (they are < 4),
    # then subtract the modulus once where the sum reached it. Same values as ``y % M``.
    y = (y & _MERSENNE) + (y >> _SHIFT)
    y -= _MERSENNE * (y >= _MERSENNE)
    return (y & _MASK32).min(axis=1).astype(np.uint32)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Estimated Jaccard similarity of the shingle sets behind two signatures."""
    return float(np.count_nonzero(a == b)) / PERMUTATIONS


def _band_keys(sig: np.ndarray) -> Iterator[int]:
    raw = sig.tobytes()
    width = ROWS * 4  # bytes per band
    for band in range(BANDS):
        # seed=band: the same rows in different bands must not collide.
        yield xxhash.xxh3_64_intdigest(raw[band * width : (band + 1) * width], seed=band)


class LSHIndex:
    """Banded LSH buckets: band key -> ids of the documents in that bucket."""

    __slots__ = ("_buckets",)

    def __init__(self) -> None:
        self._buckets: dict[int, list[str]] = {}

    def add(self, doc_id: str, sig: np.ndarray) -> None:
        if np.array_equal(sig, _EMPTY):
            return  # no shingles: nothing to match on
        for key in _band_keys(sig):
            bucket = self._buckets.setdefault(key, [])
            if doc_id not in bucket:
                bucket.append(doc_id)

    def remove(self, doc_id: str, sig: np.ndarray) -> None:
        if np.array_equal(sig, _EMPTY):
            return
        for key in _band_keys(sig):
            bucket = self._buckets.get(key)
            if bucket is None:
                continue
            if doc_id in bucket:
                bucket.remove(doc_id)
            if not bucket:
                del self._buckets[key]

    def candidates(self, sig: np.ndarray) -> list[str]:
        """Ids sharing at least one band with ``sig``, each once, in first-seen order."""
        if np.array_equal(sig, _EMPTY):
            return []
        found: dict[str, None] = {}
        for key in _band_keys(sig):
            for doc_id in self._buckets.get(key, ()):
                found[doc_id] = None
        return list(found)

    def __len__(self) -> int:
        return len(self._buckets)
