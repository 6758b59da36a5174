"""Word clusters from unlabelled news text, for the entity model's features.

A word that training never saw as a name still gets the weights of its cluster: "Ofcom"
next to "regulator" words, "Sunak" next to surnames. Brown clustering is slow in Python;
this does what it is for with linear algebra: each word (lower-case, digits as 0) is
described by the words just left and right of it (positive PMI), reduced by a randomised
SVD, and k-means cuts the result three times, coarse to fine. Seeded: the same text gives
the same clusters.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from agents.tag.ner.tokens import tokenize

__all__ = ["build_clusters", "corpus_lines"]

_DIGITS = str.maketrans("0123456789’‘", "0000000000''")


def corpus_lines(paths: Iterable[Path]) -> Iterator[str]:
    """Lines of text: titles and bodies of JSONL files, sentences of CoNLL files."""
    for path in paths:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            if path.name.endswith(".jsonl.gz"):
                for line in fh:
                    row = json.loads(line)
                    for key in ("title", "text"):
                        if row.get(key):
                            yield from str(row[key]).split("\n")
                continue
            words: list[str] = []
            for line in fh:
                parts = line.split()
                if parts and parts[0] != "-DOCSTART-":
                    words.append(parts[0])
                elif words:
                    yield " ".join(words)
                    words = []


def _sentences(lines: Iterable[str]) -> list[list[str]]:
    return [[t.translate(_DIGITS).lower() for t in tokenize(line)] for line in lines if line.strip()]


def _context_matrix(sents: list[list[str]], vocab: dict[str, int], contexts: dict[str, int]) -> np.ndarray:
    """Word x (left context, right context) positive PMI."""
    n_ctx = len(contexts)
    counts = np.zeros((len(vocab), 2 * n_ctx), dtype=np.float32)
    for sent in sents:
        padded = ["<s>", *sent, "</s>"]
        for i in range(1, len(padded) - 1):
            w = vocab.get(padded[i])
            if w is None:
                continue
            left = contexts.get(padded[i - 1])
            right = contexts.get(padded[i + 1])
            if left is not None:
                counts[w, left] += 1
            if right is not None:
                counts[w, n_ctx + right] += 1
    total = counts.sum()
    rows = counts.sum(1, keepdims=True)
    cols = counts.sum(0, keepdims=True) ** 0.75  # context smoothing (Levy et al.)
    cols *= total / cols.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(counts * total / (rows * cols))
    return np.nan_to_num(np.maximum(pmi, 0), nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def _svd(m: np.ndarray, dims: int, rng: np.random.Generator) -> np.ndarray:
    """Randomised truncated SVD (Halko et al.): the rows of ``m`` in ``dims`` dimensions."""
    q = m @ rng.standard_normal((m.shape[1], dims + 20)).astype(np.float32)
    for _ in range(3):
        q, _ = np.linalg.qr(m @ (m.T @ q))
    u, s, _ = np.linalg.svd(q.T @ m, full_matrices=False)
    out = (q @ u[:, :dims]) * np.sqrt(s[:dims])
    out /= np.linalg.norm(out, axis=1, keepdims=True) + 1e-9
    return out.astype(np.float32)


def _kmeans(x: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 25) -> np.ndarray:
    """Cluster of each row (cosine k-means from ``k`` rows drawn at random)."""
    centres = x[rng.choice(len(x), size=k, replace=False)].copy()
    assign = np.zeros(len(x), dtype=np.int32)
    for _ in range(iterations):
        assign = np.argmax(x @ centres.T, axis=1).astype(np.int32)
        sums = np.zeros_like(centres)
        np.add.at(sums, assign, x)
        empty = np.linalg.norm(sums, axis=1) == 0
        sums[empty] = centres[empty]
        centres = sums / (np.linalg.norm(sums, axis=1, keepdims=True) + 1e-9)
    return assign


def build_clusters(
    lines: Iterable[str], min_count: int = 3, n_contexts: int = 3000, dims: int = 100,
    sizes: tuple[int, int, int] = (50, 300, 1500), seed: int = 7,
) -> dict[str, tuple[int, int, int]]:
    """Lower-case word -> its cluster at three sizes, for words seen ``min_count`` times."""
    sents = _sentences(lines)
    freq = Counter(w for sent in sents for w in sent)
    words = sorted((w for w, n in freq.items() if n >= min_count), key=lambda w: (-freq[w], w))
    vocab = {w: i for i, w in enumerate(words)}
    contexts = {w: i for i, w in enumerate(["<s>", "</s>", *words[: n_contexts - 2]])}
    rng = np.random.default_rng(seed)
    vectors = _svd(_context_matrix(sents, vocab, contexts), dims, rng)
    levels = [_kmeans(vectors, min(k, len(words)), rng) for k in sizes]
    return {w: (int(levels[0][i]), int(levels[1][i]), int(levels[2][i])) for w, i in vocab.items()}
