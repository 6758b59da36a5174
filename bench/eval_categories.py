"""Category accuracy on the BBC News set, and whole ``Tagger.tag`` time per article.

    python bench/eval_categories.py [path/to/bbc_news_2225.jsonl.gz]

A hit is the gold label (tech -> technology) being the *first* category returned. The
lexicon is hand-authored; nothing here is fitted to this data.
"""

from __future__ import annotations

import gzip
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

from agents.tag import Tagger
from streams.records import Article

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "bbc_news_2225.jsonl.gz"
GOLD = {"tech": "technology"}


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    tagger = Tagger()
    hits: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    confusion: Counter[tuple[str, str]] = Counter()
    times: list[float] = []
    for row in rows:
        article = Article(id=row["id"], title=row.get("title") or "", text=row["text"] or "")
        t0 = time.perf_counter()
        tagged = tagger.tag(article)
        times.append(time.perf_counter() - t0)
        gold = GOLD.get(row["category"], row["category"])
        first = tagged.categories[0] if tagged.categories else "(none)"
        totals[gold] += 1
        hits[gold] += first == gold
        confusion[(gold, first)] += 1
    print(f"accuracy (gold == first category): {sum(hits.values()) / len(rows):.3f} on {len(rows)}")
    for gold, n in sorted(totals.items()):
        wrong = [(p, c) for (g, p), c in confusion.most_common() if g == gold and p != gold][:3]
        print(f"  {gold:14s} {hits[gold] / n:.3f}  top confusions: {wrong}")
    us = sorted(t * 1e6 for t in times)
    p99 = us[min(len(us) - 1, int(len(us) * 0.99))]
    chars = statistics.mean(len(r["text"] or "") for r in rows)
    print(
        f"Tagger.tag µs per article: median {statistics.median(us):.0f}, p99 {p99:.0f}"
        f" (mean body {chars:.0f} chars)"
    )


if __name__ == "__main__":
    main()
