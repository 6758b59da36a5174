"""The matcher at scale: with thousands of watches on real BBC articles, ``match`` (the prefilter,
shared evaluation of equal queries, keys that settle terms, shared evidence) gives exactly what
``match_exhaustive`` (every watch evaluated in full, one by one) gives."""

from __future__ import annotations

import gzip
import json
import random
import re
from itertools import pairwise

import pytest

import agents.watch.match as match_module
from agents.watch.definitions import make_watch
from agents.watch.match import WatchMatcher
from agents.watch.registry import WatchRegistry
from streams.errors import WatchError
from streams.records import Article, Entity, Watch
from tests.conftest import DATA

BBC = DATA / "bbc_news_2225.jsonl.gz"
_WORD = re.compile(r"[A-Za-zÀ-ÿ0-9][\w'’-]*")


def _bbc(count: int, seed: int) -> list[Article]:
    with gzip.open(BBC, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    rng = random.Random(seed)
    articles = []
    for row in rng.sample(rows, count):
        words = _WORD.findall(row["text"])
        names = [f"{a} {b}" for a, b in pairwise(words)
                 if a[:1].isupper() and b[:1].isupper()]
        articles.append(Article(id=row["id"], title=row["title"], text=row["text"],
                                source=rng.choice(["BBC News", "Reuters", None]),
                                language=rng.choice(["en", "en", "fr", None]),
                                entities=[Entity(n, "org") for n in names[:8]]))
    return articles


class _Gen:
    """Queries cut from the articles' own words, so that many of them match."""

    def __init__(self, articles: list[Article], rng: random.Random) -> None:
        self.rng = rng
        self.texts = [_WORD.findall(a.title + " " + a.text) for a in articles]
        self.titles = [_WORD.findall(a.title) for a in articles]
        self.entities = [e.name for a in articles for e in a.entities]

    def phrase(self, words: list[str]) -> str:
        rng = self.rng
        i = rng.randrange(len(words))
        chunk = words[i:i + rng.choice([1, 1, 2, 2, 3])]
        text = " ".join(chunk)
        if rng.random() < 0.2:
            text = text.upper() if rng.random() < 0.5 else text.lower()  # same term, other text
        if rng.random() < 0.1 and len(chunk[-1]) >= 5:
            return text[:rng.randint(3, len(text))].rstrip(" '’-") + "*"
        quoted = f'"{text}"' if len(chunk) > 1 or rng.random() < 0.3 else text
        return quoted + ("~" if rng.random() < 0.1 else "")

    def term(self, n: int) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.06 and self.titles[n]:
            return "title:" + self.phrase(self.titles[n])
        if roll < 0.09:
            return "text:" + self.phrase(self.texts[n])
        if roll < 0.13 and self.entities:
            name = rng.choice(self.entities)
            return f'entity:"{name[:rng.randint(3, len(name))]}*"' if rng.random() < 0.3 \
                else f'entity:"{name}"'
        if roll < 0.16:
            return rng.choice(["source:bbc*", 'source:"BBC News"', "source:reuters", "lang:en",
                               "lang:fr"])
        return self.phrase(self.texts[n])

    def positional(self, n: int) -> str:
        return self.phrase(self.texts[n])

    def query(self, depth: int = 0) -> str:
        rng = self.rng
        n = rng.randrange(len(self.texts))
        shape = rng.random()
        if depth > 1 or shape < 0.3:
            return self.term(n)
        if shape < 0.5:
            return " OR ".join(self.term(n) for _ in range(rng.randint(2, 3)))
        if shape < 0.65:
            return f"{self.term(n)} AND ({self.query(depth + 1)})"
        if shape < 0.75:
            return f"{self.term(n)} NOT {self.term(rng.randrange(len(self.texts)))}"
        if shape < 0.9:
            left = self.positional(n)
            right = f"({self.positional(n)} OR {self.positional(n)})" if rng.random() < 0.3 \
                else self.positional(n)
            return f"{left} NEAR/{rng.randint(0, 12)} {right}"
        return f"({self.query(depth + 1)}) ({self.query(depth + 1)})"

    def watches(self, count: int) -> list[Watch]:
        out: list[Watch] = []
        while len(out) < count:
            query = self.query() if not out or self.rng.random() > 0.1 \
                else self.rng.choice(out).query  # the same query under another name
            name = f"w{len(out) % (count // 2)}"  # equal names too: ties sort by watch order
            try:
                out.append(make_watch(name, query, created_at=0.0))
            except WatchError:
                continue
            out[-1].id = f"id{len(out)}"
        return out


def _python_matcher(monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    """Matchers built from here on match in Python: in bulk from the keys found
    (``key-decided``) or tree by tree (``trees``)."""
    monkeypatch.setattr(match_module, "kernel", None)
    monkeypatch.setattr(match_module, "MIN_DECIDED_BATCH", 0 if mode == "key-decided" else 10**9)


def test_the_compiled_kernel_is_built() -> None:
    # pip install -e . compiles it; without it matching falls back to Python, ~5x slower
    assert match_module.kernel is not None
    assert WatchMatcher([make_watch("w", "Taiwan Strait")])._kernel is not None


@pytest.mark.parametrize("plurals", [False, True])
@pytest.mark.parametrize("mode", ["compiled", "key-decided", "trees"])
def test_match_equals_exhaustive_on_bbc_articles(plurals: bool, mode: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # The compiled kernel, and Python's two ways of settling candidates.
    if mode != "compiled":
        _python_matcher(monkeypatch, mode)
    rng = random.Random(11 + plurals)
    articles = _bbc(80, seed=3)
    watches = _Gen(articles[:40], rng).watches(1500)
    matcher = WatchMatcher(watches, plurals=plurals)
    total = matched_watches = 0
    for article in articles:
        fast = matcher.match(article)
        evidence = matcher.evidence(article)
        assert [(h, evidence.matches(h.watch_id)) for h in fast] == \
            matcher.match_exhaustive(article), article.id
        _, candidates = matcher.candidates(article)
        ids = [w.id for w in watches]
        assert {h.watch_id for h in fast} <= {ids[n] for n in candidates}
        total += len(fast)
        matched_watches += len({h.watch_id for h in fast})
    assert total > 5000 and matched_watches > 500  # real matches, not only misses


def test_remembered_outcomes_survive_a_rebuild_and_stay_bounded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    _python_matcher(monkeypatch, "key-decided")
    words = ["alpha", "beta", "gamma", "delta", "eps", "zeta"]
    query = " OR ".join(words) + " NOT omega"  # 2**6 ways to match, and the NOT
    watch = make_watch("w", query)
    articles = [Article(id=str(n), title="", text=" ".join(
        w for k, w in enumerate(words + ["omega"]) if n >> k & 1)) for n in range(1, 128)]
    registry = WatchRegistry([watch])

    def check_all() -> None:
        matcher = registry.matcher
        for article in articles:
            assert matcher.match(article) == [h for h, _ in matcher.match_exhaustive(article)]

    check_all()
    outcomes = registry._compiled[watch.id].query.outcomes
    assert len(outcomes) == match_module.MAX_QUERY_OUTCOMES  # capped, and still right
    remembered = dict(outcomes)
    other = make_watch("other", "omega")
    registry.apply(other.id, other)  # a rebuild: a new matcher
    check_all()
    assert outcomes == remembered  # the new matcher used them, nothing was relearned


def test_watches_sharing_a_query_get_their_own_hits_and_evidence() -> None:
    a, b = make_watch("a", '"Taiwan Strait" OR drills'), make_watch("b", '"Taiwan Strait" OR drills')
    matcher = WatchMatcher([b, a])
    article = Article(id="x", title="", text="Drills in the Taiwan Strait")
    hits = matcher.match(article)
    assert [h.watch_name for h in hits] == ["a", "b"]
    assert hits[0].terms == hits[1].terms == ["Taiwan Strait", "drills"]  # in the query's order
    evidence = matcher.evidence(article)
    first, second = evidence.matches(a.id), evidence.matches(b.id)
    assert first == second and first is not second and len(first) == 2  # each alert its own list


def test_evidence_of_a_removed_or_changed_watch_is_empty() -> None:
    watch = make_watch("a", "drills")
    article = Article(id="x", title="", text="Drills in the Taiwan Strait")
    assert WatchMatcher([]).evidence(article).matches(watch.id) == []
    changed = make_watch("a", "exercises")  # same name, so the same id
    assert WatchMatcher([changed]).evidence(article).matches(watch.id) == []


def test_registry_shares_compiled_queries() -> None:
    registry = WatchRegistry([make_watch(f"w{i}", "alpha OR beta") for i in range(3)])
    assert len({id(c.query) for c in registry._compiled.values()}) == 1
    assert len(registry.matcher.match(Article(id="x", title="", text="beta"))) == 3


# --- the fast paths against their plain definitions ----------------------------------------------

def _plain_snippet(text: str, start: int, end: int, radius: int = 80) -> str:
    left, right = max(0, start - radius), min(len(text), end + radius)
    while left > 0 and not text[left - 1].isspace():
        left -= 1
    while right < len(text) and not text[right].isspace():
        right += 1
    body = " ".join(text[left:right].split())
    return ("…" if left > 0 else "") + body + ("…" if right < len(text) else "")


def _texts() -> list[str]:
    odd = ["x" * 300 + " ab " + "y" * 300, "  lead and trail  ", "a\xa0b\u2003c\n\nd", "word",
           "£5 — “quoted” text\twith\ttabs", "Zürich Flughafen", "naïve café", "x_y ½ ² ٣", ""]
    return [a.text for a in _bbc(40, seed=5)] + odd


def test_snippets_match_their_plain_definition() -> None:
    from agents.watch.article import _snippet

    rng = random.Random(2)
    for text in _texts():
        for _ in range(60 if len(text) > 50 else 0):
            start = rng.randrange(len(text))
            end = min(len(text), start + rng.randrange(1, 12))
            assert _snippet(text, start, end) == _plain_snippet(text, start, end)
        for start in range(min(len(text), 40)):
            assert _snippet(text, start, start + 1) == _plain_snippet(text, start, start + 1)


def test_flat_text_and_token_starts_match_the_shared_tokenizer() -> None:
    from agents.watch.article import _flat, _token_starts
    from streams.text import token_spans

    for text in _texts():
        flat = _flat(text)
        spans = token_spans(text)
        if flat is None:  # letters outside ASCII: the matcher uses streams.text instead
            assert any(not ch.isascii() and ch.isalnum() for ch in text)
            continue
        assert len(flat) == len(text) and flat.split() == [t.text for t in spans]
        assert _token_starts(flat) == [t.start for t in spans]
