"""Watch matching at scale: µs per article and matcher build time at 10 / 1,000 / 100,000 watches.

    PYTHONPATH=. .venv/bin/python bench/watch_bench.py [--data PATH] [--repeats 3] [--sizes ...]

Watches are generated from the corpus itself (seeded): phrases of 1-3 words taken from article
text (single words skew to long or capitalised words, names included), OR / AND / NOT
combinations, NEAR/n, wildcards and field scopes (title:, entity:, source:, lang:). Articles get
source "BBC News", language "en" and, when the tag stage imports, its entities. Each size is
measured ``--repeats`` times (build from scratch, then match every article once); the table shows
the median over repeats of each statistic.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import statistics
import sys
import time
from pathlib import Path

from agents.watches import WatchMatcher, compile_watch, make_watch
from streams.records import Article, Entity, Watch
from streams.text import token_spans

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bbc_news_2225.jsonl.gz"
STOP = {"the", "and", "for", "that", "with", "this", "from", "have", "said", "will", "were",
        "been", "their", "which", "would", "there", "about", "they", "also", "more", "than"}


def load_articles(path: Path) -> list[Article]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    articles = [Article(id=r["id"], title=r.get("title") or "", text=r.get("text") or "",
                        source=r.get("source") or "BBC News", language="en") for r in rows]
    try:
        from agents.tag import Tagger

        tagger = Tagger()
        for a in articles:
            a.entities = [Entity(e.name, e.kind, e.count) for e in tagger.tag(a).entities]
    except Exception as exc:  # the tag stage is optional here
        print(f"(no entities: tagger unavailable: {exc})", file=sys.stderr)
    return articles


class WatchGen:
    def __init__(self, articles: list[Article], seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.words: list[list[str]] = []  # original-cased words per article
        for a in articles[:]:
            text = a.title + " " + a.text
            self.words.append([text[t.start:t.end] for t in token_spans(text)])
        self.entities = sorted({e.name for a in articles for e in a.entities})

    def phrase(self) -> str:
        rng = self.rng
        while True:
            words = rng.choice(self.words)
            if len(words) < 5:
                continue
            size = rng.choices((1, 2, 3), (30, 50, 20))[0]
            i = rng.randrange(0, len(words) - size)
            chunk = words[i:i + size]
            first, last = chunk[0].lower(), chunk[-1].lower()
            if first in STOP or last in STOP or len(first) < 3 or len(last) < 3:
                continue
            if size == 1 and not (len(first) >= 7 or chunk[0][0].isupper()):
                continue
            return chunk[0] if size == 1 else '"' + " ".join(chunk) + '"'

    def word(self) -> str:
        while True:
            w = self.rng.choice(self.rng.choice(self.words))
            if len(w) >= 6 and w.lower() not in STOP and w.isalpha():
                return w

    def query(self) -> str:
        rng, p = self.rng, self.phrase
        kind = rng.choices(["phrase", "or", "and", "not", "near", "wild", "scope"],
                           [40, 15, 15, 8, 7, 5, 10])[0]
        if kind == "phrase":
            return p()
        if kind == "or":
            return " OR ".join(p() for _ in range(rng.randint(2, 3)))
        if kind == "and":
            return f"{p()} AND {p()}" if rng.random() < 0.5 else f"({p()} OR {p()}) AND {p()}"
        if kind == "not":
            return f"{p()} NOT {p()}"
        if kind == "near":
            return f"{p()} NEAR/{rng.randint(2, 15)} {p()}"
        if kind == "wild":
            w = self.word()
            stem = w[:max(4, len(w) - rng.randint(1, 3))] + "*"
            return stem if rng.random() < 0.5 else f"{stem} AND {p()}"
        field = rng.choice(["title", "entity", "source", "lang"])
        if field == "title":
            return f"title:{p()}"
        if field == "entity" and self.entities:
            return f'entity:"{rng.choice(self.entities)}"'
        if field == "source":
            return f"source:bbc* AND {p()}"
        return f"lang:en AND {p()}"

    def watches(self, n: int) -> list[Watch]:
        return [make_watch(f"w{i}", self.query(), created_at=0.0) for i in range(n)]


def measure(articles: list[Article], watches: list[Watch]) -> dict[str, float]:
    t0 = time.perf_counter()
    matcher = WatchMatcher([compile_watch(w) for w in watches])
    build = time.perf_counter() - t0
    times: list[float] = []
    hits = cands = 0
    for a in articles:
        t = time.perf_counter_ns()
        result = matcher.match(a)
        times.append((time.perf_counter_ns() - t) / 1000)
        hits += len(result)
    for a in articles[:200]:
        cands += len(matcher.candidates(a)[1])
    times.sort()
    return {"median": statistics.median(times), "p99": times[int(len(times) * 0.99)],
            "mean": statistics.fmean(times), "build": build,
            "hits": hits / len(articles), "cands": cands / min(200, len(articles))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sizes", type=int, nargs="*", default=[10, 1000, 100_000])
    ap.add_argument("--mode", choices=["held-out", "dense", "both"], default="both",
                    help="held-out: watches from even articles, timed on odd ones; dense: "
                         "watches from every article, timed on the same articles")
    ap.add_argument("--articles", type=int, default=1000, help="articles timed per run")
    args = ap.parse_args()
    articles = load_articles(args.data)
    modes = ["held-out", "dense"] if args.mode == "both" else [args.mode]
    for mode in modes:
        source = articles[0::2] if mode == "held-out" else articles
        timed = (articles[1::2] if mode == "held-out" else articles)[:args.articles]
        gen = WatchGen(source)
        pool = gen.watches(max(args.sizes))
        print(f"\n[{mode}] watches from {len(source)} articles, timed on {len(timed)}; "
              f"sample queries: {[w.query for w in pool[:5]]}")
        print(f"{'watches':>8} {'median µs':>10} {'p99 µs':>9} {'mean µs':>9} {'build s':>8} "
              f"{'cands/art':>10} {'hits/art':>9}")
        for size in args.sizes:
            runs = [measure(timed, pool[:size]) for _ in range(args.repeats)]
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            print(f"{size:>8} {med['median']:>10.0f} {med['p99']:>9.0f} {med['mean']:>9.0f} "
                  f"{med['build']:>8.2f} {med['cands']:>10.1f} {med['hits']:>9.1f}", flush=True)


if __name__ == "__main__":
    main()
