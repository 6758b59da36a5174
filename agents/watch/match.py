"""Matching: ``WatchMatcher.match`` finds every watch an article hits, by the compiled kernel
or by the Python reference, with the same hits either way; ``Evidence`` says where, when asked.

The per-article loop is compiled (``kernel.pyx``, Cython; built by ``pip install -e .``): a
token trie of every term's keys is walked over the article's folded title, body and meta
pseudo-tokens (entities, source, language), which finds every key and where; the keys found
wake only the queries they are required keys of, so the work per article follows how many
watches could match, not how many exist. A query with a plan (``plan.py``) runs its program
there, giving whether it matched and which terms are evidence. Each watch's hit is made once
when its terms never vary (no OR, no NEAR), else once per set of terms shown
(``Kernel.remember``, at most ``MAX_OUTCOMES`` at a time, then forgotten; a rebuild after a
watch change keeps them, ``WatchMatcher(previous=)``); hits come out in name order by a radix
sort of ranks. The other queries walk their trees in Python. Without the compiled module
(``WatchMatcher(..., compiled=False)``, or no C compiler) the same matching runs in Python:
an Aho-Corasick automaton (pyahocorasick) over the folded stream ``" title \\0 text \\0 meta "``,
and for *key-decided* queries (no NEAR, every term proven by its keys) a numpy bitmask of
terms present per candidate whose outcome is remembered per query (``MAX_QUERY_OUTCOMES``).
The tests hold all three ways to ``match_exhaustive``. A hit carries the terms that matched;
where they matched (offsets, snippets) is made by ``WatchMatcher.evidence`` only when asked
(the alert stage, for the alerts it sends), once per term and place, and shared by every
watch that shows it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import chain
from operator import itemgetter
from typing import Any

import ahocorasick
import numpy as np

from agents.watch.article import _Ctx, _Field, _matches, _meta_value, _terms_in_evidence
from agents.watch.keys import _META_MARK, _SEP, META_FIELDS, _tokens
from agents.watch.plan import MAX_DECIDED_TERMS, CompiledWatch, _Query, check_opcodes, compile_watch
from streams.records import Article, Match, Watch, WatchHit

try:
    from agents.watch import kernel
except ImportError:  # not compiled (pip install -e . builds it): the pure-Python matcher
    kernel = None  # type: ignore[assignment]
else:
    check_opcodes(getattr(kernel, "OPCODES", None))  # outside the try: a mismatch must fail

__all__ = ["Evidence", "WatchMatcher"]

MIN_DECIDED_BATCH = 96  # fewer candidates than this: walking their trees costs less than numpy
MAX_OUTCOMES = 1 << 18  # hits remembered per matcher (~60 MB at most); then forgotten
MAX_QUERY_OUTCOMES = 8  # outcomes remembered per query (~70 B each); later ones walk the tree
_MASK = (1 << MAX_DECIDED_TERMS) - 1
_UNKNOWN: list[str] = []  # a sentinel: no outcome remembered yet


def _joined_tokens(text: str) -> str:
    """The folded tokens of a text separated by spaces: what the kernel scans of a text
    with non-ASCII letters or digits (it folds the others itself), as ``_tokens`` cuts them."""
    return " ".join(_tokens(text))


def _evidence_terms(query: _Query, mask: int) -> list[str]:
    """A matched query's hit terms from the bitmask of its terms that are evidence: what
    ``_Ctx.terms`` gives (the terms in the query's order, meta terms last, as "field:text")."""
    terms = query.terms
    shown = [t for k, t in enumerate(terms) if mask >> k & 1]
    texts = [t.text for t in shown if t.field not in META_FIELDS]
    return list(dict.fromkeys(texts + [f"{t.field}:{t.text}" for t in shown if t.field in META_FIELDS]))


def _meta_stream(article: Article) -> str:
    parts = [_META_MARK["entity"] + _meta_value(e.name) for e in article.entities]
    if article.source:
        parts.append(_META_MARK["source"] + _meta_value(article.source))
    if article.language:
        parts.append(_META_MARK["lang"] + _meta_value(article.language))
    return " ".join(parts)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a matcher is built: the build allocates a million
    small objects, and each collection it triggers walks every object the process holds
    (half the build time at 100,000 watches). Nothing built here forms cycles to collect."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class WatchMatcher:
    """An immutable index of watches; ``match`` finds every watch an article hits."""

    def __init__(self, watches: Iterable[Watch | CompiledWatch], *, plurals: bool = False,
                 compiled: bool = True, previous: WatchMatcher | None = None) -> None:
        """``compiled=False`` (or no compiled kernel) matches in Python: the reference the
        tests hold the kernel to, ~5x slower at 100,000 watches. ``previous``: the matcher
        this one replaces, whose remembered hits it keeps (see ``_adopt``)."""
        with _gc_paused():
            self._build(watches, plurals, use_kernel=compiled and kernel is not None)
            if previous is not None:
                self._adopt(previous)

    def _adopt(self, previous: WatchMatcher) -> None:
        """Keep the hits the previous matcher's kernel made per (query, evidence) for every
        query whose member watches are unchanged. A new kernel makes them again on first
        sight, which is most of a new worker's cost per article (~270 µs mean at 100,000
        watches, ~130 µs once a thousand articles have shown the usual evidence); without
        this, every watch change on a busy desk would make the worker new again. The
        hits are read-only and the query object (its plan, so what a bitmask means) is the
        same one; a query whose watches changed makes its hits afresh."""
        if self._kernel is None or previous._kernel is None:
            return
        where = {id(query): q for q, query in enumerate(self._queries)}
        old_queries = previous._queries
        same: dict[int, int | None] = {}  # old query -> this matcher's, when its watches match
        remember = self._kernel.remember
        for old, mask, hits in previous._kernel.outcomes():
            q = same.get(old, -1)
            if q == -1:
                q = where.get(id(old_queries[old]))
                if q is not None and [m[1:] for m in self._members[q]] != \
                        [m[1:] for m in previous._members[old]]:
                    q = None
                same[old] = q
            if q is not None:
                remember(q, mask, hits)

    def _build(self, watches: Iterable[Watch | CompiledWatch], plurals: bool, use_kernel: bool) -> None:
        compiled = [w if isinstance(w, CompiledWatch) else compile_watch(w, plurals=plurals)
                    for w in watches]
        self._compiled: dict[str, CompiledWatch] = {c.watch.id: c for c in compiled}
        self.watches: dict[str, Watch] = {c.watch.id: c.watch for c in self._compiled.values()}
        self._list: list[CompiledWatch] = list(self._compiled.values())
        # Hits are reported by name, ties in index order (as match_exhaustive sorts them): each
        # watch's place in that order, so a match sorts small ints.
        self._rank: list[int] = [0] * len(self._list)
        by_name = sorted(range(len(self._list)), key=lambda n: self._list[n].watch.name)
        for place, n in enumerate(by_name):
            self._rank[n] = place
        # Watches with one query share one evaluation; the automaton maps each key to the
        # queries it wakes up.
        self._queries: list[_Query] = []
        self._members: list[list[tuple[int, str, str]]] = []  # (rank, id, name) per query
        self._indexes: list[list[int]] = []  # and the watches' indexes in ``_list``
        position: dict[tuple[str, bool], int] = {}
        for n, c in enumerate(self._list):
            q = position.get(c.query.source)
            if q is None:
                q = position[c.query.source] = len(self._queries)
                self._queries.append(c.query)
                self._members.append([])
                self._indexes.append([])
            self._members[q].append((self._rank[n], c.watch.id, c.watch.name))
            self._indexes[q].append(n)
        # The hits of a query whose matched terms never vary (no OR, no NEAR), made on its
        # first match and handed to every later article it matches.
        self._made: list[list[tuple[int, WatchHit]] | None] = [None] * len(self._queries)
        self._wake: dict[str, list[int]] = {}  # prefilter key -> the queries it wakes up
        for q, query in enumerate(self._queries):
            for key in query.keys:
                self._wake.setdefault(key, []).append(q)
        # The automaton (or the kernel's trie) holds every term's keys, not only the prefilter
        # keys: which keys an article holds then settles most terms without searching the
        # text (see Term.ev).
        keys = list(dict.fromkeys(chain.from_iterable(query.all_keys for query in self._queries)))
        key_ids = {key: n for n, key in enumerate(keys)}
        self._keys = keys
        # (query << MAX_DECIDED_TERMS) | bitmask, or the kernel's (query, evidence bitmask) ->
        # its hits, () when it does not match
        self._outcomes: dict[Any, list[tuple[int, WatchHit]] | tuple[()]] = {}
        self._kernel = self._build_kernel(key_ids) if use_kernel and self._wake else None
        if self._kernel is not None:
            return
        self._automaton = ahocorasick.Automaton(ahocorasick.STORE_ANY)
        for key in keys:
            self._automaton.add_word(key, key)
        if self._wake:
            self._automaton.make_automaton()
        self._build_decided(key_ids)

    def _build_kernel(self, key_ids: dict[str, int]) -> kernel.Kernel:
        """The compiled kernel over this matcher's keys and queries (it reads each query's
        ``plan`` and ``static``, and the members of each)."""
        return kernel.Kernel(key_ids, self._wake, self._queries, self._members,
                             len(self._list), MAX_OUTCOMES, _joined_tokens, WatchHit)

    def _build_decided(self, key_ids: dict[str, int]) -> None:
        """The arrays behind key-decided queries (see ``_decided_hits``): per query, one bit
        per term and one *slot* per (term, key), so an article's keys give each candidate
        query the bitmask of its terms present with a few numpy operations."""
        self._key_ids = key_ids
        # Query index and term bits share one int64 (``_decided_hits``): 2**23 queries.
        decided = [q.slots if n < 1 << (63 - MAX_DECIDED_TERMS) else ()
                   for n, q in enumerate(self._queries)]
        self._decided = np.array([bool(slots) for slots in decided], dtype=bool)
        counts = np.array([len(slots) for slots in decided], dtype=np.int64)
        self._slot_start = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        total = int(self._slot_start[-1])
        flat = [slot for slots in decided for slot in slots]
        keys, bits = zip(*flat, strict=True) if flat else ((), ())
        self._slot_key = np.fromiter(map(key_ids.__getitem__, keys), dtype=np.int64, count=total)
        self._slot_bit = np.array(bits, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.watches)

    def _kernel_match(self, article: Article, woken: bool = False) -> tuple[_Ctx | None, Any]:
        """The compiled kernel's result for an article, and the context of the queries it left
        to Python (None when it left none)."""
        assert self._kernel is not None
        result = self._kernel.match(article.title, article.text, _meta_stream(article), woken)
        ctx = None
        if result.rest:
            ctx = _Ctx(article, (_Field(article.title), _Field(article.text)))
            keys = self._keys
            ctx.keys = {keys[k] for k in result.keys}
        return ctx, result

    def _match_compiled(self, article: Article) -> list[WatchHit]:
        ctx, result = self._kernel_match(article)
        others: list[tuple[int, WatchHit]] = []
        for q, mask in result.pending:  # first seen: made here, remembered by the kernel
            query = self._queries[q]
            terms = query.shown.get(mask)
            if terms is None:
                terms = _evidence_terms(query, mask)
                if len(query.shown) < MAX_QUERY_OUTCOMES:
                    query.shown[mask] = terms  # kept by the query: rebuilds keep it
            hits = [WatchHit(watch_id, name, terms) for _, watch_id, name in self._members[q]]
            self._kernel.remember(q, mask, hits)  # type: ignore[union-attr]
            others += zip([rank for rank, _, _ in self._members[q]], hits, strict=True)
        if ctx is not None:
            others += self._walked_hits(ctx, result.rest)
        if others:
            others.sort(key=itemgetter(0))
        return result.merged(others)

    def _walked_hits(self, ctx: _Ctx, queries: Iterable[int]) -> list[tuple[int, WatchHit]]:
        """The hits of the queries whose trees are walked in Python."""
        ranked: list[tuple[int, WatchHit]] = []
        for q in queries:
            query = self._queries[q]
            if not query.proven and not query.root.ev(ctx):
                continue
            if query.static is not None:
                ranked += self._static_hits(q)
                continue
            terms = ctx.terms(query)
            ranked += [(rank, WatchHit(watch_id, name, terms)) for rank, watch_id, name in self._members[q]]
        return ranked

    def _candidate_queries(self, article: Article) -> tuple[_Ctx, set[int]]:
        fields = (_Field(article.title), _Field(article.text))
        ctx = _Ctx(article, fields)
        stream = fields[0].joined + _SEP + fields[1].joined + _SEP + " " + _meta_stream(article) + " "
        ctx.keys = keys = {key for _, key in self._automaton.iter(stream)}
        wake = self._wake
        found: set[int] = set()
        for key in keys:
            queries = wake.get(key)
            if queries is not None:
                found.update(queries)
        return ctx, found

    def candidates(self, article: Article) -> tuple[_Ctx, set[int]]:
        """The per-article context and the indexes of watches whose prefilter keys occur."""
        if not self._wake:
            return _Ctx(article, (_Field(article.title), _Field(article.text))), set()
        if self._kernel is not None:
            queries = self._kernel_match(article, woken=True)[1].woken
            ctx = _Ctx(article, (_Field(article.title), _Field(article.text)))
            return ctx, {n for q in queries for n in self._indexes[q]}
        ctx, queries = self._candidate_queries(article)
        return ctx, {n for q in queries for n in self._indexes[q]}

    def match(self, article: Article | str, text: str | None = None) -> list[WatchHit]:
        """Every watch ``article`` hits, by watch name, with the terms that matched (in the
        query's order, meta terms last); where they matched (offsets, snippets) is made by
        ``evidence``, only when asked. ``match(title, text)`` still works (without entities,
        source or language). Hits are read-only: the hit of a watch without OR or NEAR is one
        object for every article, and the hits of watches sharing a query share its terms."""
        if isinstance(article, str):
            article = Article(id="", title=article, text=text or "")
        if not self._wake:
            return []
        if self._kernel is not None:
            return self._match_compiled(article)
        ctx, found = self._candidate_queries(article)
        rest: Iterable[int] = found
        ranked: list[tuple[int, WatchHit]] = []
        if len(found) >= MIN_DECIDED_BATCH:
            woken = np.fromiter(found, dtype=np.int64, count=len(found))
            decided = self._decided[woken]
            ranked = self._decided_hits(ctx, woken[decided])
            rest = woken[~decided].tolist()
        ranked += self._walked_hits(ctx, rest)
        ranked.sort(key=itemgetter(0))
        return [hit for _, hit in ranked]

    def _decided_hits(self, ctx: _Ctx, queries: np.ndarray) -> list[tuple[int, WatchHit]]:
        """The hits of the woken queries that are *key-decided*: no NEAR, and every term
        proven by its keys. Whether such a query matches, and on which terms, depends only
        on which of its terms occur, so each (query, terms present) outcome is worked out
        once, by the tree, and remembered; an article then costs a few numpy operations for
        all of them (each query's bitmask of terms present) and a dict look-up per query,
        where walking each tree in Python cost ~3 µs per candidate."""
        ranked: list[tuple[int, WatchHit]] = []
        if not queries.size:
            return ranked
        key_ids = self._key_ids
        present = np.zeros(len(key_ids), dtype=bool)
        present[[key_ids[k] for k in ctx.keys or ()]] = True
        # Every slot of every query, gathered from the per-query ranges in one go.
        starts = self._slot_start[queries]
        lengths = self._slot_start[queries + 1] - starts
        offsets = np.cumsum(lengths) - lengths
        slots = np.arange(int(lengths.sum()), dtype=np.int64) + np.repeat(starts - offsets, lengths)
        bits = np.where(present[self._slot_key[slots]], self._slot_bit[slots], 0)
        masks = np.bitwise_or.reduceat(bits, offsets)
        codes = (queries << MAX_DECIDED_TERMS) | masks
        outcomes = self._outcomes
        for code in codes.tolist():
            hits = outcomes.get(code)
            if hits is None:
                hits = self._outcome(ctx, code >> MAX_DECIDED_TERMS, code & _MASK)
                if len(outcomes) >= MAX_OUTCOMES:
                    outcomes.clear()  # bounded: a rare mask costs one tree walk again
                outcomes[code] = hits
            ranked += hits
        return ranked

    def _outcome(self, ctx: _Ctx, q: int, mask: int) -> list[tuple[int, WatchHit]] | tuple[()]:
        """The hits of a key-decided query with these terms present. The terms it matched on
        (None: no match) are remembered on the query itself, which outlives this matcher:
        a rebuild after a watch change keeps what earlier matchers learned."""
        query = self._queries[q]
        terms = query.outcomes.get(mask, _UNKNOWN)
        if terms is _UNKNOWN:
            terms = None if not query.root.ev(ctx) else query.static or ctx.terms(query)
            if len(query.outcomes) < MAX_QUERY_OUTCOMES:
                query.outcomes[mask] = terms
        if terms is None:
            return ()
        if query.static is not None:
            return self._static_hits(q)
        return [(rank, WatchHit(watch_id, name, terms)) for rank, watch_id, name in self._members[q]]

    def _static_hits(self, q: int) -> list[tuple[int, WatchHit]]:
        """The hits of a query whose matched terms never vary, made on its first match."""
        hits = self._made[q]
        if hits is None:
            terms = self._queries[q].static
            hits = self._made[q] = [(rank, WatchHit(watch_id, name, terms))  # type: ignore[arg-type]
                                    for rank, watch_id, name in self._members[q]]
        return hits

    def evidence(self, article: Article) -> Evidence:
        """Where ``article`` matched, per watch, on demand (see ``Evidence``)."""
        return Evidence(self, article)

    def query_of(self, watch_id: str) -> _Query | None:
        compiled = self._compiled.get(watch_id)
        return None if compiled is None else compiled.query

    def match_exhaustive(self, article: Article | str, text: str | None = None
                         ) -> list[tuple[WatchHit, list[Match]]]:
        """``match`` and ``evidence`` without the prefilter, the keys' shortcuts or shared
        evaluation: every watch evaluated in full, one by one, its evidence collected the
        plain way (for tests)."""
        if isinstance(article, str):
            article = Article(id="", title=article, text=text or "")
        ctx = _Ctx(article, (_Field(article.title), _Field(article.text)))
        hits = []
        for compiled in self._list:
            if compiled.root.ev(ctx):
                matches = _matches(ctx, compiled.root)
                terms = _terms_in_evidence(ctx, compiled.root, compiled.terms)
                watch = compiled.watch
                hits.append((WatchHit(watch.id, watch.name, terms), matches))
        hits.sort(key=lambda h: h[0].watch_name)
        return hits


class Evidence:
    """Where one article matched its watches: the first ``MAX_MATCHES_PER_WATCH`` places of the
    matched terms, each with character offsets and a snippet, for one watch at a time.

    The tag stage puts only the matched terms on ``news.tagged``; the alert stage asks this for
    the alerts it sends. At 100,000 watches an article hits hundreds, and carrying every hit's
    snippets through every later topic made records ~30 times the article's size. Places and
    snippets are made once per term and place and shared by every watch that shows them."""

    __slots__ = ("_ctx", "_matcher")

    def __init__(self, matcher: WatchMatcher, article: Article) -> None:
        self._matcher = matcher
        self._ctx = _Ctx(article, (_Field(article.title), _Field(article.text)))

    def matches(self, watch_id: str) -> list[Match]:
        """The watch's matches in this article, in article order; empty when the watch is gone
        or (its query changed since tagging) no longer matches. A new list each call."""
        query = self._matcher.query_of(watch_id)
        if query is None or not query.root.ev(self._ctx):
            return []
        return list(self._ctx.matches(query))
