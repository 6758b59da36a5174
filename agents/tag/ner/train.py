"""Training the entity model on CoNLL-2003: an averaged structured perceptron.

Documents are rebuilt as text (tokens joined by spaces, a sentence a line, as
bench/eval_entities.py does) and go through the very tokenizer, lexicon and feature code
that tagging uses, so training sees what tagging will see. Features are extracted once into
flat arrays; each epoch is one compiled pass (``kernel.perceptron_epoch``). The epoch count
is chosen on the dev set (testa) only; the test set (testb) is never read here.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agents.tag.ner import kernel
from agents.tag.ner.lexicon import SLOTS, Lexicon
from agents.tag.ner.model import Config, allowed_transitions, spans_of

__all__ = ["Dataset", "read_conll", "train", "train_stages"]

Sentence = list[tuple[str, str]]  # (token, IOB1 tag)
KEPT = ("PER", "ORG", "LOC")  # the types scored (MISC is learnt, then dropped)
DROPOUT = 0.0  # how often a token is seen without its spelling features (0.3 tried: no steady gain)
CharSpan = tuple[int, int, str]


def read_conll(path: Path) -> list[list[Sentence]]:
    """Documents of a CoNLL-2003 file (token POS chunk NER; IOB1; -DOCSTART- lines)."""
    docs: list[list[Sentence]] = []
    sentence: Sentence = []
    doc: list[Sentence] = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if parts and parts[0] == "-DOCSTART-":
                if sentence:
                    doc.append(sentence)
                if doc:
                    docs.append(doc)
                sentence, doc = [], []
            elif parts:
                sentence.append((parts[0], parts[-1]))  # the POS and chunk columns are not used
            elif sentence:
                doc.append(sentence)
                sentence = []
    if sentence:
        doc.append(sentence)
    if doc:
        docs.append(doc)
    return docs


def title_cased(doc: list[Sentence]) -> list[Sentence] | None:
    """The document with its SHOUTED lines in Title Case ("CHINA IN SURPRISE DEFEAT" ->
    "China In Surprise Defeat"), or None if it has none. CoNLL's headlines are all SHOUTED;
    today's are mostly Title Case, which the model must learn to read too."""
    out = []
    changed = False
    for sentence in doc:
        words = [w for w, _ in sentence]
        shouted = sum(w.isalpha() for w in words) >= 2 and not any(c.islower() for w in words for c in w)
        if shouted:
            sentence = [(w.capitalize() if "." not in w else w, tag) for w, tag in sentence]
            changed = True
        out.append(sentence)
    return out if changed else None


def text_and_spans(doc: list[Sentence]) -> tuple[str, list[CharSpan]]:
    """The document as text and its names as character spans (IOB1 read as eval does)."""
    lines: list[str] = []
    spans: list[CharSpan] = []
    offset = 0
    for sentence in doc:
        current: list[int] | None = None
        prev = ""
        pos = offset
        for token, tag in sentence:
            kind = tag[2:] if tag != "O" else ""
            if kind and kind == prev and not tag.startswith("B-") and current:
                current[1] = pos + len(token)
            else:
                if current:
                    spans.append((current[0], current[1], prev))
                current = [pos, pos + len(token)] if kind else None
            prev = kind
            pos += len(token) + 1
        if current:
            spans.append((current[0], current[1], prev))
        line = " ".join(token for token, _ in sentence)
        lines.append(line)
        offset += len(line) + 1
    return "\n".join(lines), spans


def project(
    starts: np.ndarray, ends: np.ndarray, spans: list[CharSpan], types: tuple[str, ...]
) -> np.ndarray:
    """BIO labels of our tokens from character spans (a token inside a span takes its type)."""
    labels = np.zeros(len(starts), dtype=np.int32)
    for s, e, kind in spans:
        if kind not in types:
            continue
        t = types.index(kind)
        inside = np.flatnonzero((starts >= s) & (ends <= e))
        if len(inside):
            labels[inside] = 2 + 2 * t
            labels[inside[0]] = 1 + 2 * t
    return labels


@dataclass
class Doc:
    """One document as the tagger sees it: word ids, line starts, gold labels per token."""

    wid: np.ndarray
    newline: np.ndarray
    gold: np.ndarray


@dataclass
class Dataset:
    """Training's view of a set of documents under one model: active segments and their
    features, and what scoring needs (where each document's active tokens are)."""

    seg_ptr: np.ndarray  # segment s: active tokens seg_ptr[s]:seg_ptr[s + 1]
    tok_ptr: np.ndarray  # active token t: feats[tok_ptr[t]:tok_ptr[t + 1]]
    feats: np.ndarray
    gold: np.ndarray  # per active token, made valid BIO within its segment
    spelling: np.ndarray  # per active token, how many of its first features are its spelling
    docs: list[Doc]
    doc_active: list[np.ndarray]  # token index of each active token, per document
    doc_segs: list[tuple[int, int]]  # each document's segments
    missed: int = 0  # name tokens that are not active


def _segment_gold(labels: np.ndarray) -> np.ndarray:
    """A segment's gold labels with an I-X that follows no X turned into B-X."""
    out = labels.copy()
    for i, label in enumerate(out.tolist()):
        follows = i > 0 and out[i - 1] and (out[i - 1] - 1) >> 1 == (label - 1) >> 1
        if label and not label & 1 and not follows:
            out[i] = label - 1
    return out


def read_docs(docs: list[list[Sentence]], lexicon: Lexicon, types: tuple[str, ...]) -> list[Doc]:
    """Documents as text, through the tagger's own tokenizer and lexicon, gold projected."""
    out = []
    for doc in docs:
        text, spans = text_and_spans(doc)
        wid, starts, ends, newline = lexicon.scan(text)
        out.append(Doc(wid, newline, project(starts, ends, spans, types)))
    return out


def build_dataset(docs: list[Doc], model: kernel.Model, stage_one: list[np.ndarray] | None = None) -> Dataset:
    """Features of ``docs`` under ``model`` (a stage-two model also gets stage one's labels)."""
    tok_parts: list[np.ndarray] = []
    feat_parts: list[np.ndarray] = []
    gold_parts: list[np.ndarray] = []
    spelling_parts: list[np.ndarray] = []
    doc_active, doc_segs = [], []
    n_feat = missed = 0
    seg_ptr = [0]
    for k, doc in enumerate(docs):
        seg_lo, seg_hi, active, ptr, feats, spelling = model.features(
            doc.wid, doc.newline, None if stage_one is None else stage_one[k]
        )
        missed += int(np.count_nonzero(doc.gold)) - int(np.count_nonzero(doc.gold[active]))
        first = len(seg_ptr) - 1
        for lo, hi in zip(seg_lo.tolist(), seg_hi.tolist(), strict=True):
            gold_parts.append(_segment_gold(doc.gold[lo:hi]))
            seg_ptr.append(seg_ptr[-1] + hi - lo)
        doc_segs.append((first, len(seg_ptr) - 1))
        tok_parts.append(ptr[:-1] + n_feat)
        feat_parts.append(feats)
        spelling_parts.append(spelling)
        n_feat += len(feats)
        doc_active.append(active)
    tok_parts.append(np.array([n_feat], dtype=np.int64))
    return Dataset(
        seg_ptr=np.array(seg_ptr, dtype=np.int64),
        tok_ptr=np.concatenate(tok_parts).astype(np.int64),
        feats=np.concatenate(feat_parts).astype(np.uint32),
        gold=np.concatenate(gold_parts).astype(np.int32) if gold_parts else np.zeros(0, np.int32),
        spelling=np.concatenate(spelling_parts).astype(np.int32),
        docs=docs,
        doc_active=doc_active,
        doc_segs=doc_segs,
        missed=missed,
    )


def doc_labels(data: Dataset, predicted: np.ndarray) -> list[np.ndarray]:
    """Per document, a label for every token, from labels per active token."""
    out = []
    offset = 0
    for doc, active in zip(data.docs, data.doc_active, strict=True):
        labels = np.zeros(len(doc.gold), dtype=np.int32)
        labels[active] = predicted[offset : offset + len(active)]
        offset += len(active)
        out.append(labels)
    return out


@dataclass
class Scores:
    """Exact-span true positives, false positives and false negatives per type."""

    counts: dict[str, list[int]]  # type (and "all") -> [tp, fp, fn]

    def f1(self, kind: str) -> float:
        tp, fp, fn = self.counts[kind]
        return 2 * tp / (2 * tp + fp + fn) if tp else 0.0

    def line(self) -> str:
        return "  ".join(f"{k} {self.f1(k):.4f}" for k in self.counts)


def score(data: Dataset, predicted: np.ndarray, types: tuple[str, ...], kept: tuple[str, ...]) -> Scores:
    """Exact-span scores of ``predicted`` (labels per active token, in dataset order)."""
    counts = {k: [0, 0, 0] for k in (*kept, "all")}
    for doc, labels in zip(data.docs, doc_labels(data, predicted), strict=True):
        want = {s for s in spans_of(doc.gold) if types[s[2]] in kept}
        got = {s for s in spans_of(labels) if types[s[2]] in kept}
        for found, key in ((got & want, 0), (got - want, 1), (want - got, 2)):
            for s in found:
                counts[types[s[2]]][key] += 1
                counts["all"][key] += 1
    return Scores(counts)


@dataclass
class Trained:
    weights: np.ndarray  # averaged
    transitions: np.ndarray  # averaged, not masked
    epoch: int
    dev: Scores | None


def train(
    config: Config,
    train_set: Dataset,
    dev_set: Dataset | None,
    epochs: int,
    seed: int = 1,
    segments: np.ndarray | None = None,
    dropout: float = DROPOUT,
    kept: tuple[str, ...] = KEPT,
    log: Callable[[str], None] = print,
) -> Trained:
    """Averaged perceptron over ``segments`` (default all) for ``epochs`` passes in a seeded
    random order; with a dev set, the epoch of the best dev F1 over ``kept`` wins."""
    n_labels = 1 + 2 * len(config.types)
    W = np.zeros((1 << config.bits, n_labels), dtype=np.float32)
    U = np.zeros(W.shape, dtype=np.float64)
    T = np.zeros((n_labels + 1, n_labels + 1), dtype=np.float32)
    UT = np.zeros(T.shape, dtype=np.float64)
    allowed = allowed_transitions(len(config.types))
    rng = np.random.default_rng(seed)
    pool = np.arange(len(train_set.seg_ptr) - 1, dtype=np.int32) if segments is None else segments
    c = 1
    best: Trained | None = None
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        order = rng.permutation(pool).astype(np.int32)
        c, mistakes = kernel.perceptron_epoch(
            train_set.seg_ptr, train_set.tok_ptr, train_set.feats, train_set.gold, order,
            W, U, T, UT, allowed, c, train_set.spelling, dropout, seed * 1000 + epoch,
        )
        if dev_set is None and epoch < epochs:
            continue
        now = Trained((W - U / c).astype(np.float32), (T - UT / c).astype(np.float32), epoch, None)
        if dev_set is not None:
            pred = decode(dev_set, now)
            now.dev = score(dev_set, pred, config.types, kept)
            took = time.perf_counter() - t0
            log(f"  epoch {epoch:2d}: {mistakes:6d} mistakes, dev {now.dev.line()} ({took:.1f} s)")
        if best is None or _f1(now) > _f1(best):
            best = now
    assert best is not None
    return best


def _f1(model: Trained) -> float:
    return model.dev.f1("all") if model.dev is not None else 0.0


def decode(data: Dataset, model: Trained) -> np.ndarray:
    """Labels per active token of ``data`` under a trained model."""
    masked = model.transitions + allowed_transitions((model.weights.shape[1] - 1) // 2)
    return kernel.decode_segments(data.seg_ptr, data.tok_ptr, data.feats, model.weights, masked)


def jackknife(config: Config, data: Dataset, epochs: int, folds: int, seed: int, source: list[int],
              dropout: float) -> list[np.ndarray]:
    """Stage one's labels of every training document from a model that did not see it:
    the documents in ``folds`` interleaved folds, each tagged by a model of the others
    (``source[d]``: the document ``d`` was made from, which keeps a variant in its fold)."""
    out: list[np.ndarray] = [np.zeros(0, np.int32)] * len(data.docs)
    for fold in range(folds):
        held = [d for d in range(len(data.docs)) if source[d] % folds == fold]
        others = [d for d in range(len(data.docs)) if source[d] % folds != fold]
        kept_segs = np.concatenate([np.arange(*data.doc_segs[d], dtype=np.int32) for d in others])
        model = train(config, data, None, epochs, seed=seed + fold, segments=kept_segs, dropout=dropout)
        labels = doc_labels(data, decode(data, model))
        for d in held:
            out[d] = labels[d]
    return out


def kernel_model(config: Config) -> kernel.Model:
    """A model of ``config`` with zero weights: feature extraction only."""
    n_labels = 1 + 2 * len(config.types)
    seeds, rt_seeds = config.seeds()
    return kernel.Model(
        np.zeros((1 << config.bits, n_labels), dtype=np.float32),
        np.zeros((n_labels + 1, n_labels + 1), dtype=np.float32),
        seeds, rt_seeds, config.runtime_mask, SLOTS.index("lower"), SLOTS.index("cluster_b"),
    )  # fmt: skip


def train_stages(
    configs: tuple[Config, Config],
    clusters: dict[str, tuple[int, int, int]],
    train_docs: list[list[Sentence]],
    dev_docs: list[list[Sentence]],
    epochs: int = 25,
    folds: int = 5,
    seed: int = 1,
    augment: bool = True,
    dropout: float = DROPOUT,
    log: Callable[[str], None] = print,
) -> list[Trained]:
    """Stage one, then (if ``configs[1]``) stage two on stage one's jackknifed labels; with
    ``augment``, the training documents also come with Title Case headlines."""
    models = [kernel_model(c) for c in configs]
    lexicon = Lexicon(models, clusters)
    source = list(range(len(train_docs)))
    if augment:
        variants = [(k, v) for k, v in enumerate(map(title_cased, train_docs)) if v is not None]
        train_docs = train_docs + [v for _, v in variants]
        source += [k for k, _ in variants]
    train_read = read_docs(train_docs, lexicon, configs[0].types)
    dev_read = read_docs(dev_docs, lexicon, configs[0].types)
    t0 = time.perf_counter()
    train_set, dev_set = build_dataset(train_read, models[0]), build_dataset(dev_read, models[0])
    log(f"stage one: {len(train_set.feats)} features of {len(train_set.tok_ptr) - 1} active tokens "
        f"({train_set.missed} name tokens not active; {time.perf_counter() - t0:.1f} s)")
    one = train(configs[0], train_set, dev_set, epochs, seed=seed, dropout=dropout, log=log)
    assert one.dev is not None
    log(f"stage one: best epoch {one.epoch}, dev {one.dev.line()}")
    if len(configs) < 2:
        return [one]
    t0 = time.perf_counter()
    train_one = jackknife(configs[0], train_set, one.epoch, folds, seed, source, dropout)
    dev_one = doc_labels(dev_set, decode(dev_set, one))
    train_two = build_dataset(train_read, models[1], train_one)
    dev_two = build_dataset(dev_read, models[1], dev_one)
    log(f"stage two: jackknifed stage one in {folds} folds ({time.perf_counter() - t0:.1f} s)")
    two = train(configs[1], train_two, dev_two, epochs, seed=seed, dropout=dropout, log=log)
    assert two.dev is not None
    log(f"stage two: best epoch {two.epoch}, dev {two.dev.line()}")
    return [one, two]
