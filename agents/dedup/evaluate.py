"""Offline evaluation of the dedup stage against labelled public data sets.

* ``evaluate_stories(path, label)``: replay a JSONL(.gz) file through a fresh ``DedupIndex``
  (in ``published_at`` order where present, else file order; undated articles get a clock
  that advances one second per article) and score the story ids against the ``label`` field:
  pairwise precision / recall / F1 (over all pairs of articles) and B-cubed precision /
  recall / F1 (per article, averaged), plus articles per second of ``observe`` + ``evict``
  with warm word caches (a running worker's steady state).
* ``time_gap_baseline(path, label)``: the same replay clustered by time alone (a new story
  after a gap), to show whether a file's timestamps give its labels away.
* ``evaluate_duplicates(path)``: the gold duplicates are the articles whose whitespace-
  normalised body equals an earlier article's; reports how many are caught (exact or near)
  and how many distinct articles are wrongly called duplicates.
* ``evaluate_throughput(...)``: a synthetic stream (articles built from random sentences of
  a corpus) long enough to fill a ``max_articles`` window, timed after the window is full.

Data is read in place (never copied); rows become ``streams.records.Article``.
"""

from __future__ import annotations

import gzip
import random
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from agents.dedup.index import DedupIndex, Verdict, article_time, prepare
from streams.records import Article
from streams.text import tokens

__all__ = [
    "read_rows",
    "row_article",
    "pairwise",
    "bcubed",
    "evaluate_stories",
    "time_gap_baseline",
    "evaluate_duplicates",
    "evaluate_throughput",
]

_CLOCK0 = 1_700_000_000.0  # the clock of undated replays
REPLAY_BATCH = 256  # the agent's batch size (WIREWATCH_DEDUP_BATCH_MAX) at full speed


def read_rows(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        return [orjson.loads(line) for line in fh if line.strip()]


def row_article(row: dict[str, Any]) -> Article:
    return Article(
        id=str(row["id"]),
        title=row.get("title") or "",
        text=row.get("text") or "",
        source=row.get("source"),
        url=row.get("url"),
        published_at=row.get("published_at"),
    )


def _replay_order(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Dated rows by published_at (stable), undated rows after them in file order."""
    dated = [r for r in rows if r.get("published_at")]
    undated = [r for r in rows if not r.get("published_at")]
    dated.sort(key=lambda r: article_time(row_article(r), 0.0))
    return dated + undated


def _replay(index: DedupIndex, articles: Sequence[Article]) -> Iterator[tuple[Article, Verdict]]:
    """Observe the articles in order, their features prepared in batches as the agent does."""
    for start in range(0, len(articles), REPLAY_BATCH):
        chunk = articles[start:start + REPLAY_BATCH]
        for i, (article, prepared) in enumerate(zip(chunk, prepare(chunk), strict=True)):
            now = article_time(article, _CLOCK0 + start + i)
            verdict = index.observe(article, now, prepared=prepared)
            index.evict(now)
            yield article, verdict


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def pairwise(pred: list[str], gold: list[str]) -> dict[str, float]:
    """Precision, recall and F1 over all pairs of items put in one cluster."""
    both = sum(_pairs(n) for n in Counter(zip(pred, gold, strict=True)).values())
    in_pred = sum(_pairs(n) for n in Counter(pred).values())
    in_gold = sum(_pairs(n) for n in Counter(gold).values())
    return _prf(both / in_pred if in_pred else 1.0, both / in_gold if in_gold else 1.0)


def bcubed(pred: list[str], gold: list[str]) -> dict[str, float]:
    """B-cubed precision, recall and F1 (Bagga & Baldwin), averaged over items."""
    cell = Counter(zip(pred, gold, strict=True))
    size_pred, size_gold = Counter(pred), Counter(gold)
    n = len(pred)
    p = sum(cell[(a, b)] / size_pred[a] for a, b in zip(pred, gold, strict=True)) / n
    r = sum(cell[(a, b)] / size_gold[b] for a, b in zip(pred, gold, strict=True)) / n
    return _prf(p, r)


def _prf(p: float, r: float) -> dict[str, float]:
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def _tagged(articles: list[Article]) -> list[Article]:
    """The articles as the tag stage hands them to dedup (entities filled in)."""
    from agents.tag import Tagger  # the upstream stage; not part of dedup's cost

    tagger = Tagger()
    return [tagger.tag(a) for a in articles]


def evaluate_stories(
    path: Path, label: str, *, tag: bool = True, undated: bool = False, **index_options: Any
) -> dict[str, Any]:
    """Replay ``path`` and score predicted story ids against the ``label`` field. With
    ``tag`` the articles first go through the real ``Tagger`` (untimed), as in the pipeline.
    ``undated`` drops ``published_at`` after ordering (time then is no evidence): the UCI
    slice's timestamps are per-story crawl batches (its 87 stories are 87 disjoint runs of
    time), so a time factor there partly reads the label; the undated score is text alone."""
    rows = _replay_order(read_rows(path))
    articles = [row_article(r) for r in rows]
    if undated:
        for article in articles:
            article.published_at = None
    if tag:
        articles = _tagged(articles)
    _warm(articles)
    index = DedupIndex(**index_options)
    started = time.perf_counter()
    verdicts = [v for _, v in _replay(index, articles)]
    elapsed = time.perf_counter() - started
    pred = [v.story_id for v in verdicts]
    gold = [str(r[label]) for r in rows]
    kinds = Counter(v.kind for v in verdicts)
    return {
        "dataset": path.name,
        "articles": len(rows),
        "gold_stories": len(set(gold)),
        "predicted_stories": len(set(pred)),
        "pairwise": pairwise(pred, gold),
        "bcubed": bcubed(pred, gold),
        "kinds": dict(kinds),
        "articles_per_second": len(rows) / elapsed if elapsed else float("inf"),
    }


def time_gap_baseline(path: Path, label: str, gap_seconds: float = 10.0) -> dict[str, Any]:
    """A clusterer that reads no text: a new story whenever ``gap_seconds`` pass without an
    article, in replay order. Where it scores near 1.0 the file's timestamps encode its
    labels (stories crawled one burst at a time), and a time factor is measured against
    them: the yardstick for reading a dated score."""
    rows = [r for r in _replay_order(read_rows(path)) if r.get("published_at")]
    times = [article_time(row_article(r), 0.0) for r in rows]
    story, pred = 0, []
    for previous, now in zip([None, *times], times, strict=False):
        if previous is not None and now - previous > gap_seconds:
            story += 1
        pred.append(str(story))
    gold = [str(r[label]) for r in rows]
    return {"articles": len(rows), "predicted_stories": story + 1 if rows else 0,
            "bcubed": bcubed(pred, gold)}


def _warm(articles: list[Article]) -> None:
    """Fill the per-process word cache (IDF and token hash per word) as a running worker has them,
    so articles/s measures the steady state rather than the first look-ups of a vocabulary."""
    for start in range(0, len(articles), REPLAY_BATCH):
        prepare(articles[start:start + REPLAY_BATCH])


def evaluate_duplicates(path: Path) -> dict[str, Any]:
    """Body duplicates (same whitespace-normalised text as an earlier article) caught."""
    rows = read_rows(path)
    seen: set[str] = set()
    gold: set[str] = set()
    for row in rows:
        body = " ".join((row.get("text") or "").split())
        if body in seen:
            gold.add(str(row["id"]))
        seen.add(body)
    index = DedupIndex()
    flagged = {a.id: v for a, v in _replay(index, [row_article(r) for r in rows]) if v.kind != "unique"}
    false = sorted(set(flagged) - gold)
    by_id = {str(r["id"]): r for r in rows}
    below_half = [i for i in false if _jaccard(by_id[i], by_id[str(flagged[i].duplicate_of)]) < 0.5]
    return {
        "dataset": path.name,
        "articles": len(rows),
        "gold_duplicates": len(gold),
        "caught": len(gold & set(flagged)),
        "caught_exact": sum(1 for i in gold if i in flagged and flagged[i].kind == "exact_duplicate"),
        "caught_near": sum(1 for i in gold if i in flagged and flagged[i].kind == "near_duplicate"),
        "false_duplicates": len(false),
        "false_below_half": len(below_half),
        "false_examples": [(i, flagged[i].duplicate_of) for i in false[:10]],
    }


def _jaccard(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Exact Jaccard of two rows' 3-word shingle sets (to judge flagged pairs)."""

    def shingles(row: dict[str, Any]) -> set[tuple[str, ...]]:
        words = tokens(row.get("text") or row.get("title") or "")
        return {tuple(words[i : i + 3]) for i in range(max(1, len(words) - 2))}

    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb) if sa | sb else 1.0


def _synthetic(rows: list[dict[str, Any]], n: int, seed: int) -> list[Article]:
    """Articles of 3-7 random corpus paragraphs (~BBC length) (title: another sentence), one per minute."""
    rng = random.Random(seed)
    sentences = [s for r in rows for s in (r.get("text") or "").split("\n") if len(s) > 40]
    start = _CLOCK0
    out = []
    for i in range(n):
        body = "\n".join(rng.sample(sentences, rng.randint(3, 7)))
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + 60 * i))
        out.append(
            Article(
                id=f"syn-{i}",
                title=rng.choice(sentences)[:120],
                text=body,
                source=f"source-{rng.randint(0, 300)}",
                published_at=stamp,
            )
        )
    return out


def evaluate_throughput(
    path: Path, *, window_articles: int = 50_000, measured: int = 10_000, seed: int = 7
) -> dict[str, Any]:
    """Articles/s once a ``window_articles`` window is full (``max_articles`` cap evicting)."""
    articles = _synthetic(read_rows(path), window_articles + measured, seed)
    # The measured articles carry entities as the tag stage sets them (tagging is untimed);
    # tagging the 50,000 that only fill the window would add a minute for little change.
    articles[window_articles:] = _tagged(articles[window_articles:])
    index = DedupIndex(window_seconds=10 * 365 * 86400.0, max_articles=window_articles)
    article_bytes = 0
    story_bytes: dict[str, int] = {}
    replay = _replay(index, articles)
    for _, verdict in _take(replay, window_articles):
        for key, value in verdict.changes:
            if key.startswith("a:") and value:
                article_bytes += len(value)
            elif value:
                story_bytes[key] = len(value)  # the latest version of each story
    started, cpu_started = time.perf_counter(), time.process_time()
    count = sum(1 for _ in replay)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    return {
        "window_articles": len(index),
        "stories_in_window": index.story_count,
        "measured_articles": count,
        "articles_per_second": count / elapsed,
        "articles_per_cpu_second": count / cpu if cpu else float("inf"),
        "article_state_bytes_mean": article_bytes / window_articles,
        "story_state_bytes_mean": sum(story_bytes.values()) / max(1, len(story_bytes)),
    }


def _take(it: Iterator[tuple[Article, Verdict]], n: int) -> Iterator[tuple[Article, Verdict]]:
    for _ in range(n):
        yield next(it)
