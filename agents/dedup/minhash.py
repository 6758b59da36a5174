"""Near-duplicate detection: MinHash signatures over word shingles, banded LSH lookup.

Approach
--------
* A document is the set of its ``SHINGLE``-word shingles over ``streams.text`` tokens
  (case, punctuation and diacritics folded). Documents shorter than one shingle use the
  whole token run as a single shingle.
* Tokens are hashed once with xxh32 (cached per process); shingle hashes are combined
  arithmetically in numpy (no per-shingle string building).
* ``PERMUTATIONS`` = 64 hash functions ``xorshift16((x ^ r) * a mod 2**32)`` (odd ``a``: each
  is a bijection of the 32-bit shingle hashes), applied to all shingles at once in one
  uint32 (64 x shingles) array, give a signature of 64 uint32 minima (256 bytes): ~60 µs
  for a 400-word article. The fraction of equal positions between two signatures estimates
  the Jaccard similarity of their shingle sets (std. error ≈ 0.06; measured 0.047 on
  BBC variants, no bias). Repeated shingles are not removed: they cannot change a minimum.
* LSH: ``BANDS`` = 16 bands of ``ROWS`` = 4 rows. Two documents become candidates when one
  band matches exactly; P(candidate) = 1 - (1 - J**4)**16, i.e. 0.99 at J = 0.7, 0.55 at
  J = 0.4, 0.04 at J = 0.2. Candidates are then verified against ``THRESHOLD``.

The constants are fixed (seeded) so signatures are identical across processes and restarts:
persisted signatures stay comparable with new ones. (Changing the hash family changes every
signature: state persisted by an older version must then be rebuilt, not restored.)
Band keys are not persisted (``LSHIndex`` is rebuilt from the signatures), so their hash
may change freely.
"""

from __future__ import annotations

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

_SHIFT16 = np.uint32(16)
_rng = np.random.default_rng(20240531)
# h_i(x) = mix((x ^ _XOR[i]) * _MUL[i] mod 2**32): a xor and an odd multiplier make a bijection
# of the 32-bit shingle hashes, the xorshift folds the well-mixed high bits into the low
# ones. All uint32, so a (64 x shingles) array costs ~30 µs where mod-(2**61-1) hashing in
# uint64 cost ~250 µs; estimated Jaccard has the same error (sd 0.047 on BBC variants).
_XOR = _rng.integers(0, 1 << 32, size=(PERMUTATIONS, 1), dtype=np.uint64).astype(np.uint32)
_MUL = (_rng.integers(0, 1 << 31, size=(PERMUTATIONS, 1), dtype=np.uint64) * 2 + 1).astype(
    np.uint32
)
# Odd multipliers that mix the token hashes of a shingle into one 32-bit value.
_MIX = np.array([0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D, 0x27D4EB2F, 0x165667B1], dtype=np.uint32)
_EMPTY = np.full(PERMUTATIONS, 0xFFFFFFFF, dtype=np.uint32)
# Band keys: each band's 4 rows (two uint64 words) folded with odd constants into one int.
_BAND_MUL = (_rng.integers(0, 1 << 62, size=(BANDS, 2), dtype=np.uint64) * 2 + 1)
_BAND_ADD = _rng.integers(0, 1 << 62, size=BANDS, dtype=np.uint64)


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
    left in: they cannot change a minimum. uint32 arithmetic wraps modulo 2**32."""
    found = list(map(_TOKEN_HASHES.get, words))  # C-level look-ups; None for new words
    if None in found:
        found = [_token_hash(w) if h is None else h for w, h in zip(words, found, strict=True)]
    hashes = np.array(found, dtype=np.uint32)
    if len(words) < SHINGLE:
        combined = np.zeros(1, dtype=np.uint32)
        for i, h in enumerate(hashes):
            combined = combined * _MIX[i % len(_MIX)] + h
        return combined
    n = len(words) - SHINGLE + 1
    combined = hashes[:n] * _MIX[0]
    for i in range(1, SHINGLE):
        combined ^= hashes[i : i + n]
        combined *= _MIX[i]
    return combined


def signature(words: list[str]) -> np.ndarray:
    """MinHash signature (``PERMUTATIONS`` uint32) of a token list; all-ones when empty."""
    if not words:
        return _EMPTY.copy()
    y = _shingle_hashes(words)[np.newaxis, :] ^ _XOR
    y *= _MUL
    y ^= y >> _SHIFT16
    return y.min(axis=1)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Estimated Jaccard similarity of the shingle sets behind two signatures."""
    return float(np.count_nonzero(a == b)) / PERMUTATIONS


def _band_keys(sig: np.ndarray) -> list[int]:
    """One int per band (the same rows in different bands give different keys)."""
    words = sig.astype("<u4", copy=False).view("<u8").reshape(BANDS, ROWS // 2)
    with np.errstate(over="ignore"):
        keys = (words * _BAND_MUL).sum(axis=1) + _BAND_ADD
    keys ^= keys >> np.uint64(29)
    return keys.tolist()  # type: ignore[no-any-return]


class LSHIndex:
    """Banded LSH buckets: band key -> ids of the documents in that bucket (insertion
    ordered, O(1) add and remove however many documents share a bucket)."""

    __slots__ = ("_buckets",)

    def __init__(self) -> None:
        self._buckets: dict[int, dict[str, None]] = {}

    def add(self, doc_id: str, sig: np.ndarray) -> None:
        if np.array_equal(sig, _EMPTY):
            return  # no shingles: nothing to match on
        buckets = self._buckets
        for key in _band_keys(sig):
            bucket = buckets.get(key)
            if bucket is None:
                buckets[key] = {doc_id: None}
            else:
                bucket[doc_id] = None

    def remove(self, doc_id: str, sig: np.ndarray) -> None:
        if np.array_equal(sig, _EMPTY):
            return
        for key in _band_keys(sig):
            bucket = self._buckets.get(key)
            if bucket is None:
                continue
            bucket.pop(doc_id, None)
            if not bucket:
                del self._buckets[key]

    def candidates(self, sig: np.ndarray) -> list[str]:
        """Ids sharing at least one band with ``sig``, each once, in first-seen order."""
        if np.array_equal(sig, _EMPTY):
            return []
        found: dict[str, None] = {}
        for key in _band_keys(sig):
            bucket = self._buckets.get(key)
            if bucket:
                found.update(bucket)
        return list(found)

    def __len__(self) -> int:
        return len(self._buckets)
