"""Watch matching at scale: µs per article and build time at 10 to 100,000 watches.

    PYTHONPATH=. .venv/bin/python bench/watch_bench.py [--data PATH] [--repeats 5] [--sizes ...]

The watches are what a media-monitoring desk saves: each names specific things found in real
article text. A term is a run of 1-3 words copied from an article as written (case, hyphens),
never across punctuation, not starting or ending with a function word (wordfreq Zipf >= 5.5:
"the", "said", "people"), and in at most ``--max-df`` (5%) of the articles the watches come
from: "Tony Blair", "Microsoft" or "interest rates" are saved searches, "last year" is not. A
term is a name (capitalised words, 45%), a phrase (40%; lower-case phrases must occur in two
articles or more, so that "economy has broken" is not one) or a single specific word (15%: a
capitalised name rarer than Zipf 4.5, or a lower-case word rarer than Zipf 4, and in at most
1% of the articles). Each query takes its terms from one source article, so AND/OR/NEAR
combine things that really occur together: one term (35%; a tenth of the phrases with
plurals, ``~``), OR of 2-3 (15%), AND (15%), (a OR b) AND c (7%), NOT (7%), NEAR/n with n at
least the distance seen in the source (8%), a wildcard on a rare word whose stem stays
specific (4%) and field scopes (9%: title:, entity: from the tag stage, source:, lang:).
Queries repeat (different desks watch the same company), as they would.

``--mode held-out`` (the default) draws watches from the even articles and times the odd ones,
so a watch does not hit the very article it was cut from; ``dense`` draws from and times every
article. Either way 100,000 watches come from about a thousand articles of one feed: the desk
watches this feed's topics and little else, so read the hit columns before the times.

The table reports, per size, medians over ``--repeats`` runs: µs per article (median and p99
over the articles, for a worker just started; ``warm µs``: the median in a worker that has run
a while, its queries having met the watches' own articles before a watch change rebuilt the
matcher, since a matcher makes each OR/NEAR query's hits once per set of terms shown and a
rebuild keeps them; ``warm mean``: the mean there, which throughput follows;
``dense`` mode has nothing unseen to warm up on), the build
(``build s``: a ``WatchMatcher`` from compiled watches, which is what
``WatchRegistry.rebuild`` does after a change, the queries having been compiled as they were
staged; ``cold s``: ``WatchRegistry(watches)`` with nothing compiled or cached, as at a
worker's start), how many watches the prefilter makes candidates per article (mean) and how
many hit (median and mean), and the share of watches that hit at least one timed article.
The first columns time ``WatchMatcher.match``, the tag stage's part: which watches hit and on
which terms; ``python µs`` is the same on a new matcher without the compiled kernel
(``compiled=False``), in the same run. ``evidence µs`` (median per article) and ``per alert``
(µs per hit) time the alert stage's part, ``WatchMatcher.evidence``: offsets and snippets for
every hit, as if every hit sent an alert.
"""

from __future__ import annotations

import argparse
import bisect
import gc
import gzip
import json
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy  # noqa: F401  (a worker has it loaded already; the matcher imports it on a first hit)
from wordfreq import zipf_frequency

import agents.watch.keys as keys_module
import agents.watch.plan as plan_module
import agents.watch.query as query_module
from agents.watch.definitions import make_watch
from agents.watch.match import WatchMatcher
from agents.watch.plan import compile_watch
from agents.watch.registry import WatchRegistry
from streams.records import Article, Entity, Watch
from streams.text import token_spans

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bbc_news_2225.jsonl.gz"
FUNCTION_ZIPF = 5.5  # words at least this common (the, said, people, told) never end a term
RARE_ZIPF = 4.0  # a lower-case single word is a term only when rarer than this in English
NAME_ZIPF = 4.5  # a single capitalised word too: "Microsoft" and "Iraq" but not "Sunday", "Jane"
LINKS = frozenset({"of", "and", "for", "the", "de", "la", "von", "van"})  # inside names
MAX_TERM_WORDS = 3
WORD_MAX_DF = 0.01  # a single word occurs in at most 1% of the source articles


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


# --------------------------------------------------------------------------------------------
# Terms found in the articles


@dataclass(frozen=True, slots=True)
class Term:
    text: str  # as written in the article
    folded: str  # folded tokens joined by spaces: the document-frequency key
    name: bool  # every word capitalised
    start: int  # token index in its field, for NEAR distances
    words: int


def _runs(text: str) -> Iterator[list[tuple[str, str, str]]]:
    """Runs of (gap before, as written, folded) words with only a space or a hyphen between
    them: a term never crosses punctuation."""
    run: list[tuple[str, str, str]] = []
    last_end = -1
    for tok in token_spans(text):
        gap = text[last_end:tok.start] if last_end >= 0 else ""
        if run and gap not in (" ", "-"):
            yield run
            run = []
        run.append((gap, text[tok.start:tok.end], tok.text))
        last_end = tok.end
    if run:
        yield run


def _ngrams(folded: list[str]) -> set[str]:
    out: set[str] = set()
    for n in range(1, MAX_TERM_WORDS + 1):
        out.update(" ".join(folded[i:i + n]) for i in range(len(folded) - n + 1))
    return out


class Corpus:
    """The candidate terms of each source article and their document frequencies."""

    def __init__(self, articles: list[Article], max_df: float) -> None:
        self.zipf: dict[str, float] = {}
        fields = [[list(_runs(a.title)), list(_runs(a.text))] for a in articles]
        df: Counter[str] = Counter()
        for title, text in fields:
            df.update(_ngrams([f for run in title + text for _, _, f in run]))
        self.limit = max(1, int(max_df * len(articles)))
        self.word_limit = max(1, int(WORD_MAX_DF * len(articles)))
        self.df = df
        self.vocabulary = sorted((w, c) for w, c in df.items() if " " not in w)
        self.title_terms = [[t for t in self._terms(title) if self._keep(t)] for title, _ in fields]
        self.text_terms = [[t for t in self._terms(text) if self._keep(t)] for _, text in fields]
        self.entities = [sorted({e.name for e in a.entities}) for a in articles]

    def _keep(self, term: Term) -> bool:
        """A name may be unique to its article; a lower-case term must recur (in two articles)
        to be a thing people watch and not a fragment ("executives hold"); a single word must
        be rare here too ("analysts" is rare in English, not in business news)."""
        df = self.df[term.folded]
        return (term.name or df >= 2) and df <= (self.word_limit if term.words == 1 else self.limit)

    def prefix_df(self, stem: str) -> int:
        """Articles with a word starting with ``stem``, at most (the sum over such words)."""
        i = bisect.bisect_left(self.vocabulary, (stem, 0))
        total = 0
        while i < len(self.vocabulary) and self.vocabulary[i][0].startswith(stem):
            total += self.vocabulary[i][1]
            i += 1
        return total

    def _z(self, word: str) -> float:
        z = self.zipf.get(word)
        if z is None:
            z = self.zipf[word] = zipf_frequency(word, "en")
        return z

    def _terms(self, runs: list[list[tuple[str, str, str]]]) -> Iterator[Term]:
        index = 0
        for run in runs:
            for i in range(len(run)):
                for n in range(1, min(MAX_TERM_WORDS, len(run) - i) + 1):
                    term = self._term(run[i:i + n], index + i, sentence_start=i == 0)
                    if term is not None:
                        yield term
            index += len(run)

    def _term(self, words: list[tuple[str, str, str]], start: int,
              sentence_start: bool) -> Term | None:
        folded = [f for _, _, f in words]
        if any(self._z(f) >= FUNCTION_ZIPF and f not in LINKS for f in folded[1:-1]):
            return None  # "economy has broken" is a fragment, "Bank of England" a name
        first, last = folded[0], folded[-1]
        if self._z(first) >= FUNCTION_ZIPF or self._z(last) >= FUNCTION_ZIPF:
            return None
        if first.isdigit() or last.isdigit() or len(first) < 2 or len(last) < 2:
            return None
        name = words[0][1][:1].isupper() and words[-1][1][:1].isupper() and \
            all(w[:1].isupper() or f in LINKS for _, w, f in words)
        if name and sentence_start and len(words) == 1 and not words[0][1].isupper():
            name = False  # any word is capitalised at the start of a sentence
        if len(words) == 1:
            limit = NAME_ZIPF if name else RARE_ZIPF
            if len(first) < 4 or self._z(first) >= limit:
                return None
        text = words[0][1] + "".join(gap + w for gap, w, _ in words[1:])
        return Term(text, " ".join(folded), name, start, len(words))


# --------------------------------------------------------------------------------------------
# Queries


def _gap(a: Term, b: Term) -> int:
    """Words between two terms of one field; -1 when they overlap."""
    if b.start >= a.start + a.words:
        return b.start - a.start - a.words
    if a.start >= b.start + b.words:
        return a.start - b.start - b.words
    return -1


KINDS = ("name", "phrase", "word")
KIND_WEIGHTS = (45, 40, 15)


def _kind(term: Term) -> str:
    return "word" if term.words == 1 else "name" if term.name else "phrase"


class WatchGen:
    def __init__(self, articles: list[Article], seed: int = 7, max_df: float = 0.05) -> None:
        self.rng = random.Random(seed)
        self.corpus = Corpus(articles, max_df)
        self.pools: list[dict[str, list[Term]]] = []
        for terms in self.corpus.text_terms:
            pools: dict[str, list[Term]] = {k: [] for k in KINDS}
            # Each thing once per article: "Tony Blair" said ten times is still one thing to watch.
            for t in {t.folded: t for t in reversed(terms)}.values():
                pools[_kind(t)].append(t)
            self.pools.append(pools)
        self.usable = [i for i, terms in enumerate(self.corpus.text_terms) if len(terms) >= 4]

    def _pick(self, n: int) -> Term:
        """From article ``n``: a name (45%), a phrase (40%) or a single specific word (15%),
        whichever it has."""
        rng, pools = self.rng, self.pools[n]
        kind = rng.choices(KINDS, KIND_WEIGHTS)[0]
        pool = pools[kind] or self.corpus.text_terms[n]
        return rng.choice(pool)

    def _distinct(self, n: int, count: int) -> list[Term]:
        """Up to ``count`` terms of article ``n``, none inside another ("Disney Studios" and
        "Walt Disney Studios" make a silly AND)."""
        chosen: list[Term] = []
        for _ in range(4 * count):
            t = self._pick(n)
            padded = f" {t.folded} "
            if all(padded not in f" {c.folded} " and f" {c.folded} " not in padded for c in chosen):
                chosen.append(t)
                if len(chosen) == count:
                    break
        return chosen

    @staticmethod
    def _show(term: Term, plural: bool = False) -> str:
        text = f'"{term.text}"' if term.words > 1 else term.text
        return text + "~" if plural else text

    def query(self) -> str:
        rng = self.rng
        n = rng.choice(self.usable)
        kind = rng.choices(["one", "or", "and", "or-and", "not", "near", "wild", "scope"],
                           [35, 15, 15, 7, 7, 8, 4, 9])[0]
        if kind == "one":
            term = self._pick(n)  # plurals on things, not on names ("Wells~" is "well")
            return self._show(term, plural=_kind(term) == "phrase" and rng.random() < 0.1)
        if kind == "near":
            return self._near(n)
        if kind == "wild":
            return self._wildcard(n)
        if kind == "scope":
            return self._scoped(n)
        if kind == "not":
            other = rng.choice(self.usable) if rng.random() < 0.5 else n
            a, b = self._pick(n), self._pick(other)
            return self._show(a) if a.folded in b.folded else f"{self._show(a)} NOT {self._show(b)}"
        shown = [self._show(t) for t in self._distinct(n, {"or": rng.randint(2, 3)}.get(kind, 3))]
        if kind == "or":
            return " OR ".join(shown)
        if kind == "and" or len(shown) < 3:
            return " AND ".join(shown[:2])
        return f"({shown[0]} OR {shown[1]}) AND {shown[2]}"

    def _near(self, n: int) -> str:
        a = self._pick(n)
        close = [(b, gap) for b in self.corpus.text_terms[n] if 0 <= (gap := _gap(a, b)) <= 10]
        if not close:
            return self._show(a)
        b, gap = self.rng.choice(close)
        return f"{self._show(a)} NEAR/{gap + self.rng.randint(0, 5)} {self._show(b)}"

    def _wildcard(self, n: int) -> str:
        """A rare word cut to a stem that is still specific: "telecom*", never "invest*"."""
        rng = self.rng
        words = [t for t in self.pools[n]["word"]
                 if not t.name and len(t.folded) >= 7 and t.folded.isalpha()]
        if words:
            word = rng.choice(words).folded
            stem = word[:max(5, len(word) - rng.randint(1, 3))]
            if self.corpus.prefix_df(stem) <= min(self.corpus.limit, 2 * self.corpus.df[word]):
                return stem + "*" if rng.random() < 0.5 else \
                    f"{stem}* AND {self._show(self._pick(n))}"
        return self._show(self._pick(n))

    def _scoped(self, n: int) -> str:
        rng = self.rng
        field = rng.choice(["title", "entity", "source", "lang"])
        titles = self.corpus.title_terms[n]
        if field == "title" and titles:
            return f"title:{self._show(rng.choice(titles))}"
        if field == "entity" and self.corpus.entities[n]:
            return f'entity:"{rng.choice(self.corpus.entities[n])}"'
        if field == "source":
            return f"source:bbc* AND {self._show(self._pick(n))}"
        return f"lang:en AND {self._show(self._pick(n))}"

    def watches(self, n: int) -> list[Watch]:
        return [make_watch(f"w{i}", self.query(), created_at=0.0) for i in range(n)]


# --------------------------------------------------------------------------------------------
# Measuring


def _forget_compiled() -> None:
    """Drop every cached compiled query and term, so the next build parses them all (a cold
    start). The names are agents.watch internals; a version without them has nothing to drop."""
    for module in (plan_module, query_module, keys_module):
        for name in ("_compile_query", "_term_spec", "_word_parts", "_token_freq"):
            cached = getattr(module, name, None)
            if cached is not None and hasattr(cached, "cache_clear"):
                cached.cache_clear()


def _match_us(matcher: WatchMatcher, articles: list[Article]) -> list[float]:
    times = []
    for a in articles:
        t = time.perf_counter_ns()
        matcher.match(a)
        times.append((time.perf_counter_ns() - t) / 1000)
    return times


def _warm_us(articles: list[Article], watches: list[Watch], warmup: list[Article]) -> list[float]:
    """A worker that has run a while: its queries have met other articles (each remembers its
    hits per set of its terms shown), then a watch change rebuilt the matcher, as
    ``WatchRegistry`` does it (keeping what the worker's matcher learned)."""
    _forget_compiled()
    fresh = [compile_watch(w) for w in watches]  # queries that have met none of the articles
    worker = WatchMatcher(fresh)
    for a in warmup:
        worker.match(a)
    rebuilt = WatchMatcher(fresh, previous=worker)
    del worker
    gc.collect()
    return _match_us(rebuilt, articles)


def measure(articles: list[Article], watches: list[Watch], warmup: list[Article]
            ) -> dict[str, float]:
    _forget_compiled()
    gc.collect()
    t0 = time.perf_counter()
    WatchRegistry(watches)  # compile every query, then build: a worker's start
    cold = time.perf_counter() - t0
    compiled = [compile_watch(w) for w in watches]  # as the registry holds them once staged
    gc.collect()
    t0 = time.perf_counter()
    matcher = WatchMatcher(compiled)  # what WatchRegistry.rebuild does after a change
    build = time.perf_counter() - t0
    for a in articles[:20]:
        matcher.match(a)  # one-time costs of a process (imports, word lists) are not per article
    gc.collect()
    times: list[float] = []
    hits: list[int] = []
    ever: set[str] = set()
    found: list[list[str]] = []
    for a in articles:
        t = time.perf_counter_ns()
        result = matcher.match(a)
        times.append((time.perf_counter_ns() - t) / 1000)
        hits.append(len(result))
        ever.update(h.watch_id for h in result)
        found.append([h.watch_id for h in result])
    # The alert stage's part, timed apart: offsets and snippets of every hit, as if each hit
    # sent an alert (an upper bound: a story's later articles hit the same watches again).
    evidence: list[float] = []
    for a, ids in zip(articles, found, strict=True):
        t = time.perf_counter_ns()
        explain = matcher.evidence(a)
        for watch_id in ids:
            explain.matches(watch_id)
        evidence.append((time.perf_counter_ns() - t) / 1000)
    cands = statistics.fmean(len(matcher.candidates(a)[1]) for a in articles[:200])
    # The same matching in Python (no compiled kernel), on the same articles in the same run:
    # the ratio holds on a noisy machine where the absolute times do not.
    python = WatchMatcher(compiled, compiled=False)
    for a in articles[:20]:
        python.match(a)
    gc.collect()
    python_median = statistics.median(_match_us(python, articles))
    del python
    warm = _warm_us(articles, watches, warmup) if warmup else times
    times.sort()
    return {"median": statistics.median(times), "p99": times[int(len(times) * 0.99)],
            "warm": statistics.median(warm), "warm_mean": statistics.fmean(warm),
            "python": python_median,
            "mean": statistics.fmean(times), "build": build, "cold": cold, "cands": cands,
            "hits_med": statistics.median(hits), "hits": statistics.fmean(hits),
            "ever": 100 * len(ever) / len({w.id for w in watches}),
            "evidence": statistics.median(evidence),
            "per_alert": sum(evidence) / max(1, sum(hits))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sizes", type=int, nargs="*", default=[10, 1000, 10_000, 100_000])
    ap.add_argument("--mode", choices=["held-out", "dense", "both"], default="held-out",
                    help="held-out: watches from even articles, timed on odd ones; dense: "
                         "watches from every article, timed on the same articles")
    ap.add_argument("--articles", type=int, default=1000, help="articles timed per run")
    ap.add_argument("--max-df", type=float, default=0.05,
                    help="no term occurs in more than this share of the source articles")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    articles = load_articles(args.data)
    modes = ["held-out", "dense"] if args.mode == "both" else [args.mode]
    for mode in modes:
        source = articles[0::2] if mode == "held-out" else articles
        timed = (articles[1::2] if mode == "held-out" else articles)[:args.articles]
        warmup = source if mode == "held-out" else []  # dense: nothing unseen to warm up on
        gen = WatchGen(source, seed=args.seed, max_df=args.max_df)
        pool = gen.watches(max(args.sizes))
        distinct = len({w.query for w in pool})
        print(f"\n[{mode}] {len(pool)} watches ({distinct} distinct queries) from {len(source)} "
              f"articles, max df {args.max_df:.0%}, timed on {len(timed)}; median of "
              f"{args.repeats} runs; sample queries:")
        for w in pool[:8]:
            print(f"    {w.query}")
        print(f"{'watches':>8} {'build s':>8} {'cold s':>7} {'median µs':>10} {'p99 µs':>8} "
              f"{'mean µs':>8} {'warm µs':>8} {'warm mean':>10} {'python µs':>10} {'cands/art':>10} "
              f"{'hits/art med':>13} {'mean':>6} "
              f"{'ever hit':>9} {'evidence µs':>12} {'per alert':>10}")
        for size in args.sizes:
            runs = [measure(timed, pool[:size], warmup) for _ in range(args.repeats)]
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            print(f"{size:>8} {med['build']:>8.2f} {med['cold']:>7.2f} {med['median']:>10.0f} "
                  f"{med['p99']:>8.0f} {med['mean']:>8.0f} {med['warm']:>8.0f} {med['warm_mean']:>10.0f} "
                  f"{med['python']:>10.0f} "
                  f"{med['cands']:>10.1f} "
                  f"{med['hits_med']:>13.1f} {med['hits']:>6.1f} {med['ever']:>8.1f}%"
                  f" {med['evidence']:>12.0f} {med['per_alert']:>10.1f}", flush=True)


if __name__ == "__main__":
    main()
