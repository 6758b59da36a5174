"""Watched topics: the query language, the registry, and matching an article against every watch.

Query language
==============

A watch's query is a boolean expression over *terms*. Every term is matched on folded tokens
(``streams.text``): case, hyphens, punctuation, quotes (straight or curly) and diacritics do
not matter, so ``crisis communications`` matches "crisis-communications" and ``Taiwan Strait``
matches "Taiwan Strait's" and "TAIWAN STRAIT".

Grammar (keywords are upper case; ``and``/``or``/``not``/``near`` in lower case are words)::

    query   := or
    or      := and ( "OR" and )*
    and     := not ( ["AND"] not )*            adjacent terms are ANDed
    not     := "NOT" not | near
    near    := primary ( "NEAR/" n primary )*  n = 0..50, left-associative
    primary := [field ":"] ( "(" or ")" | phrase | words )
    phrase  := '"' word+ '"' ["~"]             also “curly quotes”
    words   := word+                           a run of bare words is ONE phrase
    word    := letters/digits/punctuation, optionally ending in "*" (prefix) or "~" (plurals)
    field   := "title" | "text" | "entity" | "source" | "lang"

Precedence, tightest first: field scope, NEAR, NOT, AND, OR. Parentheses group.

* ``"crisis communications"`` or ``crisis communications``: the phrase, tokens adjacent and in
  order. A run of bare words is one phrase, as in the original syntax, so a plain phrase and
  ``a OR b`` mean what they always meant; to AND two words write ``a AND b``, ``"a" "b"`` or
  ``"a" b``. Adjacent terms that are not both bare words are ANDed: ``"Taiwan Strait" drills``.
* ``A AND B``, ``A OR B``, ``NOT A``; ``China NOT Taiwan`` = ``China AND NOT Taiwan``;
  ``a OR b AND NOT c`` = ``a OR (b AND (NOT c))``.
* ``"Taiwan Strait" NEAR/10 drills``: both terms occur in the same field (title or text), in
  either order, with at most ``n`` tokens between them (``NEAR/0``: adjacent). The two
  occurrences must not overlap. Operands of NEAR are terms, ``(a OR b)`` groups of terms, or
  another NEAR (its span is the pair's span): ``(China OR Beijing) NEAR/5 (drills OR exercise*)``.
* ``commun*``: a token starting with ``commun`` (at least 3 letters before ``*``; ``*`` only at
  the end of a word). In a phrase each word may be a prefix: ``"crisis commun*"``.
* ``strait~`` (or ``"Taiwan Strait"~``): plurals too. With plurals a token matches when the
  simple English singulars agree: ``-ies`` -> ``-y`` (cities/city), ``-ches -shes -sses -xes
  -zes`` drop ``-es`` (boxes/box), otherwise a final ``-s`` is dropped, except after ``ss``,
  ``us``, ``is``, on tokens of 3 letters or fewer and on a few words (news, series...). Off by
  default; ``WatchRegistry(plurals=True)`` / ``WatchMatcher(..., plurals=True)`` turns it on
  for every term of every watch.
* Field scopes apply to the one word, quoted phrase or parenthesised group that follows
  (``title:Taiwan Strait`` is ``title:Taiwan AND Strait``; write ``title:"Taiwan Strait"``):
  ``title:`` (the article's title only), ``text:`` (the body only; unscoped terms match title
  or body), ``entity:`` (equals the folded name of one of the article's entities; with a
  trailing ``*`` a prefix of it: ``entity:"Lloyd Aus*"``), ``source:`` (equals the folded
  source, ``source:bbc*`` for a prefix), ``lang:`` (equals the article's language code:
  ``lang:en``). Scopes do not nest; ``entity:``/``source:``/``lang:`` terms cannot be NEAR
  operands.

Refused, with ``WatchError("position P: reason")`` (``P`` is the 0-based character offset in
the query): anything that does not parse (``position 17: expected ')'``), more than
``MAX_QUERY_CHARS`` characters, ``MAX_TERMS`` terms, ``MAX_DEPTH`` nested parentheses or
``MAX_PHRASE_TOKENS`` tokens in a phrase, and any query that could match an article containing
none of its positive terms (``NOT x``, ``a OR NOT b``): every OR branch must require a term.

Examples::

    Taiwan Strait
    "crisis communications" OR "crisis hotline"
    ("Taiwan Strait" OR "South China Sea") NEAR/10 (drills OR exercise*) NOT title:opinion
    entity:"Lloyd Austin" AND (China OR Beijing) AND lang:en
    title:(merger OR takeover~) source:reuters*

Matching at scale
=================

Each watch has a small set of *required keys* such that any article it matches contains at
least one of them: for OR every branch's, for AND/NEAR the branch that looks rarest (by English
word frequencies from wordfreq, news-common words such as "government" or "bbc" counted as
common, a phrase rarer than its rarest word); NOT never counts. A term's key is its folded
phrase with single spaces (" taiwan strait "); a wildcard's is a token prefix (" commun");
with plurals it is every exact plural form (" strait ", " straits "). Watches with the same
query share one parsed query (compiled once, cached by query text) and one evaluation.

The per-article loop is compiled (``agents/watchkernel.pyx``, Cython; built by
``pip install -e .``): a token trie of every term's keys is walked over the article's folded
title, body and meta pseudo-tokens (entities, source, language), which finds every key and
where; the keys found wake only the queries they are required keys of, so the work per
article follows how many watches could match, not how many exist. A query whose every term
occurs exactly where one of its keys does (nearly all: not a plural past ``MAX_KEY_VARIANTS``
forms or a mid-phrase wildcard) runs as a small postfix program, AND / OR / NOT over its
terms and NEAR over the places the scan recorded, giving whether it matched and which terms
are evidence. Each watch's hit is made once when its terms never vary (no OR, no NEAR), else
once per set of terms shown (``Kernel.remember``, at most ``MAX_OUTCOMES`` at a time, then
forgotten; a rebuild after a watch change keeps them, ``WatchMatcher(previous=)``); hits
come out in name order by a radix sort of ranks. The other queries walk their trees in
Python. Without the compiled module (``WatchMatcher(..., compiled=False)``,
or no C compiler) the same matching runs in Python: an Aho-Corasick automaton
(pyahocorasick) over the folded stream ``" title \0 text \0 meta "``, and for
*key-decided* queries (no NEAR, every term proven by its keys) a numpy bitmask of terms
present per candidate whose outcome is remembered per query (``MAX_QUERY_OUTCOMES``). The
tests hold all three ways to ``match_exhaustive``. A hit carries the terms that matched;
where they matched (offsets, snippets) is made by ``WatchMatcher.evidence`` only when asked
(the alert stage, for the alerts it sends), once per term and place, and shared by every
watch that shows it.

Building a matcher for 100,000 compiled watches takes about 1.3 s (compiling them
from scratch, as at a worker's start, a few seconds more: ``stage`` compiles each watch as it
arrives). ``WatchRegistry.apply`` rebuilds synchronously (fine for a handful of watches or
tests); a worker should call ``WatchRegistry.stage`` for each change it reads and then
``await registry.rebuild_async()`` once per batch (or ``await registry.apply_async(...)`` for
one change): the new matcher is built in ``asyncio.to_thread`` and swapped in as one attribute
assignment, so a match in progress never sees half an update and the event loop keeps running
while it builds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import ipaddress
import re
import time
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import ahocorasick
import numpy as np

try:
    import agents.watchkernel as watchkernel
except ImportError:  # not compiled (pip install -e . builds it): the pure-Python matcher
    watchkernel = None  # type: ignore[assignment]

from streams.errors import WatchError
from streams.records import Article, Match, Watch, WatchHit, stable_id
from streams.text import normalize, token_spans, tokens

__all__ = ["parse_terms", "parse_query", "make_watch", "validate_watch", "check_watch",
           "load_watch_file", "singular",
           "CompiledWatch", "compile_watch", "WatchMatcher", "Evidence", "WatchRegistry",
           "MAX_QUERY_CHARS", "MAX_TERMS", "MAX_DEPTH", "MAX_PHRASE_TOKENS", "MAX_NEAR",
           "MAX_MATCHES_PER_WATCH", "MAX_NAME_CHARS", "MAX_WEBHOOK_CHARS", "MAX_RATE_LIMIT"]

MAX_QUERY_CHARS = 1000
MAX_TERMS = 50
MAX_DEPTH = 8
MAX_PHRASE_TOKENS = 16
MAX_NEAR = 50
NEAR_PAIRS_SCANNED = 64  # more pairs of places than this: NEAR bisects (_near_pairs)
MAX_MATCHES_PER_WATCH = 10
MAX_DECIDED_TERMS = 40  # a key-decided query's terms are bits of an int64, its index the rest
MIN_DECIDED_BATCH = 96  # fewer candidates than this: walking their trees costs less than numpy
MAX_OUTCOMES = 1 << 18  # hits remembered per matcher (~60 MB at most); then forgotten
MAX_QUERY_OUTCOMES = 8  # outcomes remembered per query (~70 B each); later ones walk the tree
_MASK = (1 << MAX_DECIDED_TERMS) - 1
# The compiled kernel's opcodes (agents/watchkernel.pyx has the same numbers): a truth program
# of (op, arg) pairs; a NEAR runs the span program of the pairs that follow it.
OP_TERM, OP_AND, OP_OR, OP_NOT, OP_NEAR, SP_TERM, SP_OR, SP_NEAR = range(1, 9)
_UNKNOWN: list[str] = []  # a sentinel: no outcome remembered yet
SNIPPET_RADIUS = 80
MIN_WILDCARD_PREFIX = 3
MAX_KEY_VARIANTS = 32  # plural combinations of one term put in the automaton as exact keys
UNKNOWN_FREQ = 5e-7  # a word not in the frequency list (names, jargon): below all in it
PHRASE_DECAY = 0.5  # each further word of a phrase halves the guess (names are collocations)
META_FREQ = {"lang": 1.0, "source": 0.3, "entity": 1e-5}  # lang:en holds for every article

TEXT_FIELDS = ("title", "text")  # positional fields; index 0 and 1 in the token streams
META_FIELDS = ("entity", "source", "lang")
FIELDS = TEXT_FIELDS + META_FIELDS
_META_MARK = {"entity": "\x01e", "source": "\x01s", "lang": "\x01l"}
_SEP = "\x00"  # a pseudo-token between fields: no key ever spans it
_JOIN = "\x02"  # joins the tokens of one meta value into a single pseudo-token

EXACT, PLURAL, PREFIX = 0, 1, 2

_OPEN_QUOTES = {'"': '"', "“": "”", "„": "“"}
# Spaces, then a parenthesis, a quote, or a bare word (which runs to a space, parenthesis or quote).
_LEX = re.compile(r'\s*(?:([()])|(["“”„])|([^\s()"“”„]+))')
_NONSPACE = re.compile(r"\S+")

_NOT_PLURAL = frozenset({"news", "series", "species", "means", "physics", "politics",
                         "economics", "mathematics", "athletics", "aids", "always",
                         "perhaps", "whereas", "afterwards", "towards", "sometimes",
                         "lens", "bias", "gas", "chaos", "thanks", "arms"})

_STOPWORD_TEXT = """a an and are as at be been but by for from had has have he her his
i in is it its of on or our she that the their them they this to was we were which who will
with you not no new said says say year years one two three also after over more about than
up out into its would could should there what when up mr mrs ms can do did just all been
government people time first last people us uk world news bbc"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


@lru_cache(maxsize=65536)
def singular(token: str) -> str:
    """The simple English singular of a folded token (see the module docstring)."""
    if len(token) <= 3 or token[-1] != "s" or token in _NOT_PLURAL:
        return token
    if token.endswith(("ss", "us", "is")):
        return token
    if token.endswith("ies") and len(token) > 4:
        return token[:-3] + "y"
    if token.endswith(("sses", "ches", "shes", "xes", "zes")):
        return token[:-2]
    return token[:-1]


# --------------------------------------------------------------------------------------------
# The syntax tree


class _Node:
    __slots__ = ("pos",)
    pos: int

    def ev(self, ctx: _Ctx) -> bool:
        raise NotImplementedError

    def collect(self, ctx: _Ctx, out: set[tuple[str, int, int, int]], meta: list[str]) -> None:
        raise NotImplementedError

    def gather(self, ctx: _Ctx, terms: list[Term], meta: list[str]) -> None:
        """The terms whose every occurrence is evidence (``collect`` without the places, for
        queries without NEAR); meta terms that hold go to ``meta`` as "field:text"."""
        raise NotImplementedError


@dataclass(slots=True, eq=False)
class Term(_Node):
    pos: int
    text: str  # as written, without quotes or "~"
    field: str | None  # None (title or text), or one of FIELDS
    parts: tuple[tuple[str, int], ...]  # (folded token or prefix, EXACT | PLURAL | PREFIX)
    key: str = ""  # this string occurs in the stream wherever the term does
    cost: float = 0.0
    sig: str = ""  # equal for terms that match the same places (a str: its hash is cached)
    verify: tuple[tuple[int, str, int], ...] = ()  # parts the key does not already prove
    keys: tuple[str, ...] = ()  # the prefilter keys: ``(key,)`` or its exact plural variants
    proven: bool = False  # one of ``keys`` occurring in the stream proves the term matches

    def ev(self, ctx: _Ctx) -> bool:
        found = ctx.keys
        if found is not None:  # the automaton looked for every key of this term
            for key in self.keys:
                if key in found:
                    break
            else:
                return False  # wherever the term occurs one of its keys does
            if self.proven:
                return True  # a meta term always is: its key is its whole marked value
        if self.field in META_FIELDS:
            return ctx.meta_match(self)
        return bool(ctx.occurrences(self))

    def collect(self, ctx: _Ctx, out: set[tuple[str, int, int, int]], meta: list[str]) -> None:
        if self.field in META_FIELDS:
            if ctx.meta_match(self):
                meta.append(f"{self.field}:{self.text}")
            return
        for f, i, j in ctx.occurrences(self):
            out.add((self.text, f, i, j))

    def gather(self, ctx: _Ctx, terms: list[Term], meta: list[str]) -> None:
        if self.field not in META_FIELDS:
            terms.append(self)
        elif ctx.meta_match(self):
            meta.append(f"{self.field}:{self.text}")

    def spans(self, ctx: _Ctx) -> list[tuple[int, int, int, tuple[tuple[Term, int, int, int], ...]]]:
        return [(f, i, j, ((self, f, i, j),)) for f, i, j in ctx.occurrences(self)]


@dataclass(slots=True, eq=False)
class And(_Node):
    pos: int
    children: list[_Node]

    def ev(self, ctx: _Ctx) -> bool:
        for c in self.children:  # noqa: SIM110 - all() and a generator cost more per candidate
            if not c.ev(ctx):
                return False
        return True

    def collect(self, ctx: _Ctx, out: set[tuple[str, int, int, int]], meta: list[str]) -> None:
        for c in self.children:
            c.collect(ctx, out, meta)

    def gather(self, ctx: _Ctx, terms: list[Term], meta: list[str]) -> None:
        for c in self.children:
            c.gather(ctx, terms, meta)


@dataclass(slots=True, eq=False)
class Or(_Node):
    pos: int
    children: list[_Node]

    def ev(self, ctx: _Ctx) -> bool:
        for c in self.children:  # noqa: SIM110 - as in And.ev
            if c.ev(ctx):
                return True
        return False

    def collect(self, ctx: _Ctx, out: set[tuple[str, int, int, int]], meta: list[str]) -> None:
        for c in self.children:
            if c.ev(ctx):
                c.collect(ctx, out, meta)

    def gather(self, ctx: _Ctx, terms: list[Term], meta: list[str]) -> None:
        for c in self.children:
            if c.ev(ctx):
                c.gather(ctx, terms, meta)

    def spans(self, ctx: _Ctx) -> list[tuple[int, int, int, tuple[tuple[Term, int, int, int], ...]]]:
        result = []
        for c in self.children:
            result.extend(c.spans(ctx))  # type: ignore[attr-defined]
        return result


@dataclass(slots=True, eq=False)
class Not(_Node):
    pos: int
    child: _Node

    def ev(self, ctx: _Ctx) -> bool:
        return not self.child.ev(ctx)

    def collect(self, ctx: _Ctx, out: set[tuple[str, int, int, int]], meta: list[str]) -> None:
        return  # what is absent is no evidence

    def gather(self, ctx: _Ctx, terms: list[Term], meta: list[str]) -> None:
        return


@dataclass(slots=True, eq=False)
class Near(_Node):
    pos: int
    left: _Node
    right: _Node
    n: int

    def spans(self, ctx: _Ctx) -> list[tuple[int, int, int, tuple[tuple[Term, int, int, int], ...]]]:
        left = self.left.spans(ctx)  # type: ignore[attr-defined]
        if not left:
            return []
        right = self.right.spans(ctx)  # type: ignore[attr-defined]
        if len(left) * len(right) > NEAR_PAIRS_SCANNED:
            return _near_pairs(left, right, self.n)
        n = self.n
        result = []
        for fa, ia, ja, la in left:
            for fb, ib, jb, lb in right:
                if fa != fb:
                    continue
                if (ja < ib and ib - ja - 1 <= n) or (jb < ia and ia - jb - 1 <= n):
                    result.append((fa, min(ia, ib), max(ja, jb), la + lb))
        return result

    def ev(self, ctx: _Ctx) -> bool:
        # Both sides first (from the keys found, usually): the prefilter woke the query for
        # one side only, and spans search the text.
        return self.left.ev(ctx) and self.right.ev(ctx) and bool(self.spans(ctx))

    def collect(self, ctx: _Ctx, out: set[tuple[str, int, int, int]], meta: list[str]) -> None:
        for _, _, _, leaves in self.spans(ctx):
            for term, f, i, j in leaves:
                out.add((term.text, f, i, j))

    def gather(self, ctx: _Ctx, terms: list[Term], meta: list[str]) -> None:
        # The terms of its spans (not every occurrence of them is evidence: ``_Ctx.matches``
        # collects a NEAR's places); for ``_terms_in_evidence``, which asks which terms.
        for _, _, _, leaves in self.spans(ctx):
            terms.extend(leaf[0] for leaf in leaves)


_Span = tuple[int, int, int, tuple[tuple["Term", int, int, int], ...]]


def _near_pairs(left: list[_Span], right: list[_Span], n: int) -> list[_Span]:
    """``Near.spans`` for many places (a term repeated all over a long text): each left span
    pairs only with the right spans starting within ``n`` tokens after it or ending within
    ``n`` before it, found by bisection in the right spans sorted by start and by end, so the
    cost follows the pairs made, not every pair of places. The same spans, in another order."""
    by_start = sorted(right, key=lambda s: (s[0], s[1]))
    starts = [(s[0], s[1]) for s in by_start]
    by_end = sorted(right, key=lambda s: (s[0], s[2]))
    ends = [(s[0], s[2]) for s in by_end]
    result = []
    for fa, ia, ja, la in left:
        after = by_start[bisect_left(starts, (fa, ja + 1)):bisect_right(starts, (fa, ja + 1 + n))]
        before = by_end[bisect_left(ends, (fa, ia - 1 - n)):bisect_right(ends, (fa, ia - 1))]
        result += [(fa, min(ia, ib), max(ja, jb), la + lb) for _, ib, jb, lb in after + before]
    return result


_TermProps = tuple[str, float, str, tuple[tuple[int, str, int], ...], tuple[str, ...], bool]


def _term_props(field: str | None, parts: tuple[tuple[str, int], ...]) -> _TermProps:
    """A term's (key, cost, sig, verify, keys, proven): the fields of ``Term`` after ``parts``."""
    sig = repr((field, parts))
    if field in META_FIELDS:
        joined = _JOIN.join(p for p, _ in parts)
        exact = parts[-1][1] != PREFIX
        key = " " + _META_MARK[field] + joined + (" " if exact else "")
        return key, META_FREQ[field], sig, (), (key,), True
    key, proven, freq = _search_key(parts)
    verify = tuple((k, t, kind) for k, (t, kind) in enumerate(parts) if k >= proven)
    variants = _variant_keys(parts)
    if variants is None:
        return key, freq, sig, verify, (key,), field is None and not verify
    return key, _variants_freq(parts), sig, verify, variants, field is None


def _search_key(parts: tuple[tuple[str, int], ...]) -> tuple[str, int, float]:
    """The string to search the stream for, how many parts it proves (the exact tokens up to
    the first wildcard, its prefix included, or plural, whose stem it holds unproven), and a
    guess at how often it occurs: a phrase is rarer than its rarest word."""
    key, freq = " ", 1.0
    for k, (token, kind) in enumerate(parts):
        if kind == EXACT:
            key += token + " "
            freq = min(freq, _token_freq(token))
            continue
        stem = token if kind == PREFIX else token[:-1] if token.endswith("y") else token
        freq = min(freq, _prefix_freq(stem)) * PHRASE_DECAY ** k
        return key + stem, k + 1 if kind == PREFIX else k, freq
    return key, len(parts), freq * PHRASE_DECAY ** (len(parts) - 1)


def _variants_freq(parts: tuple[tuple[str, int], ...]) -> float:
    """``_search_key``'s guess for the exact plural variants: each plural part counts twice."""
    freq = min(_token_freq(t) * (2 if kind == PLURAL else 1) if kind != PREFIX else _prefix_freq(t)
               for t, kind in parts)
    return freq * PHRASE_DECAY ** (len(parts) - 1)


def _plural_forms(token: str) -> list[str]:
    """Every token whose ``singular`` is ``token``: it, and -s, -es, -y to -ies forms."""
    forms = [token, token + "s", token + "es"]
    if token.endswith("y"):
        forms.append(token[:-1] + "ies")
    return [f for f in forms if singular(f) == token]


def _variant_keys(parts: tuple[tuple[str, int], ...]) -> tuple[str, ...] | None:
    """Exact prefilter keys for a term with plurals: every combination of the plural forms
    ("interest rate"~: " interest rate ", " interest rates ", " interests rate "...), so the
    automaton finds the term itself, not every token starting with "interest". None when
    the term has no plural part, or too many combinations, or a plural after a wildcard."""
    if not any(kind == PLURAL for _, kind in parts):
        return None
    keys = [" "]
    for n, (token, kind) in enumerate(parts):
        if kind == PREFIX:
            if n != len(parts) - 1:
                return None  # parts after a mid-phrase wildcard would still need checking
            return tuple(k + token for k in keys)
        forms = [token] if kind == EXACT else _plural_forms(token)
        if not forms or len(keys) * len(forms) > MAX_KEY_VARIANTS:
            return None
        keys = [k + form + " " for k in keys for form in forms]
    return tuple(keys)


@lru_cache(maxsize=1)
def _frequencies() -> dict[str, float]:
    """English word frequencies (wordfreq's small list: ~29,000 words, loaded in ~15 ms)."""
    from wordfreq import get_frequency_dict  # here: only key choice needs it, not every import

    return get_frequency_dict("en", wordlist="small")


@lru_cache(maxsize=1 << 17)
def _token_freq(token: str) -> float:
    """How often a folded token occurs in news text, roughly (a share of all tokens): the
    prefilter keys each AND by its rarest child, so a watch wakes up only when the word that
    makes it specific occurs. A word missing from the list is rarer than any in it."""
    if token in _STOPWORDS:
        return 1e-2  # common in news whatever English at large says ("bbc", "government")
    if token.isdigit():
        return 1e-4
    return _frequencies().get(token, UNKNOWN_FREQ)


def _prefix_freq(prefix: str) -> float:
    """A guess for a token prefix (a wildcard, or the stem of a plural): the word itself
    and some, and short prefixes of many words."""
    return max(3 * _token_freq(prefix), 1e-3 * 0.3 ** (len(prefix) - MIN_WILDCARD_PREFIX))


# --------------------------------------------------------------------------------------------
# The parser


@dataclass(slots=True)
class _Tok:
    kind: str  # WORD PHRASE LP RP AND OR NOT NEAR SCOPE EOF
    pos: int
    text: str = ""
    n: int = 0


def _err(pos: int, reason: str) -> WatchError:
    return WatchError(f"position {pos}: {reason}")


def _lex(query: str) -> list[_Tok]:
    out: list[_Tok] = []
    i, size = 0, len(query)
    while True:
        m = _LEX.match(query, i)  # spaces skipped in C: a cold start lexes 100,000 queries
        if m is None or m.lastindex is None:
            break
        i = m.start(m.lastindex)
        if m.lastindex == 1:
            out.append(_Tok("LP" if m.group(1) == "(" else "RP", i))
            i += 1
        elif m.lastindex == 2:
            i = _lex_phrase(query, i, out)
        else:
            i = _lex_word(query, i, m.group(3), out)
    out.append(_Tok("EOF", size))
    return out


def _lex_phrase(query: str, i: int, out: list[_Tok]) -> int:
    close = _OPEN_QUOTES.get(query[i], query[i])
    end = query.find(close, i + 1)
    if close == "”":  # “...” may also be closed by a straight quote
        alt = query.find('"', i + 1)
        end = alt if end < 0 or (0 <= alt < end) else end
    if end < 0:
        raise _err(i, "unterminated quote")
    tok = _Tok("PHRASE", i, query[i + 1:end])
    i = end + 1
    if i < len(query) and query[i] == "~":
        tok.n = 1  # plurals
        i += 1
    out.append(tok)
    return i


def _lex_word(query: str, i: int, word: str, out: list[_Tok]) -> int:
    colon = word.find(":")
    if word in ("AND", "OR", "NOT"):
        out.append(_Tok(word, i))
    elif word.startswith("NEAR/"):
        digits = word[5:]
        if not digits.isdigit() or not digits.isascii():
            raise _err(i + 5, "expected a number after 'NEAR/'")
        if int(digits) > MAX_NEAR:
            raise _err(i + 5, f"NEAR/{digits}: the limit is NEAR/{MAX_NEAR}")
        out.append(_Tok("NEAR", i, word, int(digits)))
    elif colon > 0 and word[:colon].lower() in FIELDS:
        out.append(_Tok("SCOPE", i, word[:colon].lower()))
        return i + colon + 1  # lex what follows the colon on its own
    else:
        out.append(_Tok("WORD", i, word))
    return i + len(word)


_TERM_START = {"WORD", "PHRASE", "LP", "SCOPE", "NOT"}


class _Parser:
    def __init__(self, query: str, plurals: bool) -> None:
        self.query = query
        self.toks = _lex(query)
        self.i = 0
        self.depth = 0
        self.plurals = plurals
        self.terms: list[Term] = []
        self.scope: str | None = None

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def next(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def parse(self) -> _Node | None:
        flat = self.parse_flat()
        if not isinstance(flat, _Parser):
            return flat
        node = self.parse_or()
        tok = self.peek()
        if tok.kind != "EOF":
            what = "')'" if tok.kind == "RP" else repr(tok.text or tok.kind)
            raise _err(tok.pos, f"unexpected {what}")
        return node

    def parse_flat(self) -> _Node | _Parser | None:
        """The tree ``parse_or`` would build for the commonest queries: terms (a quoted phrase,
        or a run of bare words) joined all by OR or all by AND. Built directly, since a cold
        start parses 100,000 queries; anything else returns ``self``, for the full parser."""
        toks = self.toks
        ops = {t.kind for t in toks[:-1] if t.kind in ("OR", "AND")}
        if len(ops) > 1 or any(t.kind not in ("WORD", "PHRASE", "OR", "AND") for t in toks[:-1]):
            return self
        groups: list[list[_Tok]] = [[]]
        for tok in toks[:-1]:
            if tok.kind in ops:
                groups.append([])
            else:
                groups[-1].append(tok)
        for group in groups:
            if not group or (len(group) > 1 and any(t.kind != "WORD" for t in group)):
                return self  # an empty operand, or an implicit AND: the parser says what
        kept: list[_Node] = []
        for group in groups:
            first = group[0]
            if first.kind == "PHRASE":
                words = [(m.group(), first.pos + 1 + m.start())
                         for m in _NONSPACE.finditer(first.text)]
                term = self.term(first.pos, words, plural_all=bool(first.n), scope=None)
            else:
                term = self.term(first.pos, [(t.text, t.pos) for t in group], plural_all=False,
                                 scope=None)
            if term is not None:
                kept.append(term)
        if len(kept) <= 1:
            return kept[0] if kept else None
        return (Or if "OR" in ops else And)(toks[0].pos, kept)

    def expect_operand(self, after: _Tok) -> None:
        tok = self.peek()
        if tok.kind not in _TERM_START:
            name = after.text if after.kind == "NEAR" else after.kind
            raise _err(tok.pos, f"expected a term after {name}")

    def parse_or(self) -> _Node | None:
        first = self.peek()
        children = [self.parse_and()]
        while self.peek().kind == "OR":
            op = self.next()
            self.expect_operand(op)
            children.append(self.parse_and())
        kept = [c for c in children if c is not None]
        if len(kept) <= 1:
            return kept[0] if kept else None
        return Or(first.pos, kept)

    def parse_and(self) -> _Node | None:
        first = self.peek()
        if first.kind not in _TERM_START:
            raise _err(first.pos, "expected a term" if first.kind != "RP" else "unexpected ')'")
        children = [self.parse_not()]
        while True:
            tok = self.peek()
            if tok.kind == "AND":
                self.next()
                self.expect_operand(tok)
            elif tok.kind not in _TERM_START:
                break
            children.append(self.parse_not())
        kept = [c for c in children if c is not None]
        if len(kept) <= 1:
            return kept[0] if kept else None
        return And(first.pos, kept)

    def parse_not(self) -> _Node | None:
        nots: list[_Tok] = []
        while self.peek().kind == "NOT":
            nots.append(self.next())
        if nots:
            self.expect_operand(nots[-1])
        node = self.parse_near()
        for tok in reversed(nots):
            if node is None:
                raise _err(tok.pos, "NOT needs a term with words")
            node = Not(tok.pos, node)
        return node

    def parse_near(self) -> _Node | None:
        left = self.parse_primary(None)
        while self.peek().kind == "NEAR":
            op = self.next()
            if self.peek().kind not in ("WORD", "PHRASE", "LP", "SCOPE"):
                raise _err(self.peek().pos, f"expected a term after {op.text}")
            right_pos = self.peek().pos
            right = self.parse_primary(None)
            for node, pos in ((left, op.pos), (right, right_pos)):
                if node is None or not _positional(node):
                    raise _err(node.pos if node is not None else pos,
                               "NEAR needs terms, (a OR b) groups of terms or NEARs on both "
                               "sides, not AND/NOT or entity:/source:/lang:")
            assert left is not None and right is not None
            left = Near(op.pos, left, right, op.n)
        return left

    def parse_primary(self, scope: str | None) -> _Node | None:
        tok = self.peek()
        if tok.kind == "SCOPE":
            self.next()
            if scope is not None or self.scope is not None:
                raise _err(tok.pos, f"field scope {tok.text}: inside {scope or self.scope}: "
                           "(scopes do not nest)")
            if self.peek().kind not in ("WORD", "PHRASE", "LP"):
                raise _err(self.peek().pos, f"expected a term or '(' after {tok.text}:")
            if self.peek().kind == "WORD":  # a scope takes one bare word (as in Lucene)
                word = self.next()
                return self.term(word.pos, [(word.text, word.pos)], plural_all=False,
                                 scope=tok.text)
            return self.parse_primary(tok.text)
        if tok.kind == "LP":
            self.next()
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise _err(tok.pos, f"parentheses nested deeper than {MAX_DEPTH}")
            outer = self.scope
            self.scope = scope or outer
            node = self.parse_or()
            self.scope = outer
            close = self.peek()
            if close.kind != "RP":
                raise _err(close.pos, "expected ')'")
            self.next()
            self.depth -= 1
            return node
        scope = scope or self.scope
        if tok.kind == "PHRASE":
            self.next()
            found = [(m.group(), tok.pos + 1 + m.start()) for m in _NONSPACE.finditer(tok.text)]
            return self.term(tok.pos, found, plural_all=bool(tok.n), scope=scope)
        if tok.kind == "WORD":
            words: list[tuple[str, int]] = []
            while self.peek().kind == "WORD":
                word = self.next()
                words.append((word.text, word.pos))
            return self.term(tok.pos, words, plural_all=False, scope=scope)
        raise _err(tok.pos, "expected a term")

    def term(self, pos: int, words: list[tuple[str, int]], plural_all: bool,
             scope: str | None) -> Term | None:
        spec = _term_spec(tuple([w for w, _ in words]), plural_all or self.plurals, scope)
        if spec.error is not None:
            n, offset, reason = spec.error
            raise _err(words[n][1] + offset, reason)
        if spec.props is None:
            return None
        if len(spec.parts) > MAX_PHRASE_TOKENS:
            raise _err(pos, f"a phrase of {len(spec.parts)} words; the limit is {MAX_PHRASE_TOKENS}")
        term = Term(pos, spec.text, scope, spec.parts, *spec.props)
        self.terms.append(term)
        if len(self.terms) > MAX_TERMS:
            raise _err(pos, f"more than {MAX_TERMS} terms; that is the limit")
        return term


class _Spec(NamedTuple):
    """What a term's words make of it, whatever its position in a query."""

    text: str
    parts: tuple[tuple[str, int], ...]
    props: _TermProps | None  # None: no words (or an error)
    error: tuple[int, int, str] | None  # (word index, offset in that word, reason)


@lru_cache(maxsize=1 << 17)
def _term_spec(words: tuple[str, ...], plural: bool, scope: str | None) -> _Spec:
    """Cached: the same terms recur across thousands of watches."""
    parts: list[tuple[str, int]] = []
    shown: list[str] = []
    meta = scope in META_FIELDS
    for n, word in enumerate(words):
        text, word_parts, error = _word_parts(word, plural, meta)
        if error is not None:
            return _Spec("", (), None, (n, *error))
        shown.append(text)
        parts.extend(word_parts)
    if not parts:
        return _Spec("", (), None, None)
    frozen = tuple(parts)
    return _Spec(" ".join(shown), frozen, _term_props(scope, frozen), None)


@lru_cache(maxsize=1 << 16)
def _word_parts(word: str, plural: bool, meta: bool
                ) -> tuple[str, tuple[tuple[str, int], ...], tuple[int, str] | None]:
    """One word of a term: as shown, its parts, and an error (offset in the word, reason);
    cached because the same words recur across thousands of watches."""
    if word.endswith("~"):
        word = word[:-1]
        plural = True
    star = word.endswith("*")
    base = word[:-1] if star else word
    if "*" in base:
        return word, (), (base.find("*"), "'*' is only allowed at the end of a word")
    folded = _tokens(base)
    if star and (not folded or len(folded[-1]) < MIN_WILDCARD_PREFIX):
        return word, (), (len(base), f"a wildcard needs at least {MIN_WILDCARD_PREFIX} "
                          "letters before '*'")
    parts = []
    for n, t in enumerate(folded):
        if star and n == len(folded) - 1:
            parts.append((t, PREFIX))
        elif plural and not meta:
            parts.append((singular(t), PLURAL))
        else:
            parts.append((t, EXACT))
    return word, tuple(parts), None


def _positional(node: _Node) -> bool:
    if isinstance(node, Term):
        return node.field not in META_FIELDS
    if isinstance(node, Or):
        return all(_positional(c) for c in node.children)
    return isinstance(node, Near)


def _cover(node: _Node) -> tuple[float, list[str]] | None:
    """(cost, keys): at least one key occurs in every article the node matches; None when no
    such set exists (a NOT, or an OR with such a branch)."""
    if isinstance(node, Term):
        return node.cost, list(node.keys)
    if isinstance(node, Not):
        return None
    if isinstance(node, Or):
        total, keys = 0.0, []
        for c in node.children:
            sub = _cover(c)
            if sub is None:
                return None
            total += sub[0]
            keys.extend(sub[1])
        return total, keys
    children = [node.left, node.right] if isinstance(node, Near) else node.children  # type: ignore[attr-defined]
    best = None
    for c in children:
        sub = _cover(c)
        if sub is not None and (best is None or sub[0] < best[0]):
            best = sub
    return best


def _uncovered(node: _Node) -> _Node:
    """The part of a query to blame when it has no cover."""
    if isinstance(node, Or):
        for c in node.children:
            if _cover(c) is None:
                return _uncovered(c)
    if isinstance(node, And):
        return _uncovered(node.children[0])
    return node


def _parse(query: str, plurals: bool) -> tuple[_Node, list[Term]]:
    if len(query) > MAX_QUERY_CHARS:
        raise WatchError(f"query is {len(query)} characters; the limit is {MAX_QUERY_CHARS}")
    parser = _Parser(query, plurals)
    root = parser.parse()
    if root is None:
        raise WatchError(f"query {query!r} has no words to match")
    return root, parser.terms


def _checked(query: str, plurals: bool) -> tuple[_Node, list[Term], list[str]]:
    root, terms = _parse(query, plurals)
    cover = _cover(root)
    if cover is None:
        blame = _uncovered(root)
        raise _err(blame.pos, "this can match an article containing none of the query's "
                   "terms (a bare NOT); AND it with a positive term")
    return root, terms, list(dict.fromkeys(cover[1]))


def _proves(node: _Node) -> bool:
    """True when any one of the node's prefilter keys occurring proves the node matches: a
    term whose key is the whole term (no plural or mid-phrase wildcard left to check, and no
    title:/text: scope, since the key may occur in the other field), or an OR of such terms."""
    if isinstance(node, Term):
        return node.proven
    return isinstance(node, Or) and all(_proves(c) for c in node.children)


def _has_near(node: _Node) -> bool:
    if isinstance(node, Near):
        return True
    if isinstance(node, And | Or):
        return any(_has_near(c) for c in node.children)
    return isinstance(node, Not) and _has_near(node.child)


@dataclass(slots=True, eq=False)
class _Query:
    """A parsed query, shared by every watch that has it and evaluated once per article."""

    source: tuple[str, bool]  # (query, plurals): watches with equal sources are one query
    root: _Node
    terms: list[Term]
    keys: list[str]
    proven: bool  # see _proves: a candidate is a hit without evaluating the tree
    simple: bool  # no NEAR: the evidence is every occurrence of the terms ``gather`` picks
    static: list[str] | None  # the matched terms when they never vary (no OR, no NEAR)
    # Key-decided (whether it matches, and on which terms, follows from which terms' keys
    # occur): each (term, key) as the key and the term's bit; () for other queries.
    slots: tuple[tuple[str, int], ...]
    all_keys: tuple[str, ...]  # every key of every term, for the matcher's automaton or trie
    # What the compiled kernel runs (``_kernel_plan``); None when a term is not characterised
    # by its keys, and Python walks the tree.
    plan: _Plan | None
    # Bitmask of terms present -> the terms it matched on, None if it did not (key-decided
    # queries; filled as articles show them, at most MAX_QUERY_OUTCOMES).
    outcomes: dict[int, list[str] | None] = dataclasses.field(default_factory=dict)
    # The same for the compiled kernel, by bitmask of terms that are evidence -> the terms.
    shown: dict[int, list[str]] = dataclasses.field(default_factory=dict)


@lru_cache(maxsize=1 << 16)
def _compile_query(query: str, plurals: bool) -> _Query:
    """Parsed once per distinct query: desks save the same searches, and a validation
    followed by a compilation should not parse twice. (A matcher shares the queries of
    watches whose query text is equal whether or not they came from this cache.)"""
    root, terms, keys = _checked(query, plurals)
    simple = not _has_near(root)
    decided = simple and len(terms) <= MAX_DECIDED_TERMS and all(t.proven for t in terms)
    slots = tuple((key, 1 << bit) for bit, t in enumerate(terms) for key in t.keys) if decided else ()
    return _Query((query, plurals), root, terms, keys, _proves(root), simple, _static_terms(root),
                  slots, tuple(k for t in terms for k in t.keys), _kernel_plan(root, terms))


# A query for the compiled kernel: its postfix program of (opcode, argument) pairs; per term
# the fields it may occur in and its keys; and how a hit names its terms: (term bit, label)
# in the order ``_evidence_terms`` gives, or None when two terms share a label (Python then
# names them: ``_evidence_terms``).
_Plan = tuple[tuple[int, ...], tuple[tuple[int, tuple[str, ...]], ...],
              tuple[tuple[int, str], ...] | None]
_TERM_FIELDS = {None: 1 | 2, "title": 1, "text": 2, "entity": 4, "source": 4, "lang": 4}


def _characterised(term: Term) -> bool:
    """True when the term occurs exactly where one of its keys does (in its fields): no part
    left for ``verify`` to check, or exact plural variants for keys."""
    return term.field in META_FIELDS or not term.verify or term.keys != (term.key,)


def _kernel_plan(root: _Node, terms: list[Term]) -> _Plan | None:
    """The query as the compiled kernel runs it (``agents/watchkernel.pyx``), or None when
    some term is not characterised by its keys."""
    if len(terms) > 64 or not all(_characterised(t) for t in terms):
        return None
    index = {id(t): k for k, t in enumerate(terms)}
    program: list[int] = []

    def truth(node: _Node) -> None:
        if isinstance(node, Term):
            program.extend((OP_TERM, index[id(node)]))
        elif isinstance(node, And | Or):
            for c in node.children:
                truth(c)
            program.extend((OP_AND if isinstance(node, And) else OP_OR, len(node.children)))
        elif isinstance(node, Not):
            truth(node.child)
            program.extend((OP_NOT, 0))
        else:
            assert isinstance(node, Near)
            spans: list[int] = []
            places(node, spans)
            program.extend((OP_NEAR, len(spans) // 2, *spans))

    def places(node: _Node, out: list[int]) -> None:
        if isinstance(node, Term):
            out.extend((SP_TERM, index[id(node)]))
        elif isinstance(node, Or):
            for c in node.children:
                places(c, out)
            out.extend((SP_OR, len(node.children)))
        else:
            assert isinstance(node, Near)  # the parser allows nothing else under NEAR
            places(node.left, out)
            places(node.right, out)
            out.extend((SP_NEAR, node.n))

    truth(root)
    labels = [(k, t.text) for k, t in enumerate(terms) if t.field not in META_FIELDS]
    labels += [(k, f"{t.field}:{t.text}") for k, t in enumerate(terms) if t.field in META_FIELDS]
    unique = len({label for _, label in labels}) == len(labels)
    return (tuple(program), tuple((_TERM_FIELDS[t.field], t.keys) for t in terms),
            tuple(labels) if unique else None)


@dataclass(slots=True)
class CompiledWatch:
    """A watch with its parsed query and prefilter keys."""

    watch: Watch
    query: _Query

    @property
    def root(self) -> _Node:
        return self.query.root

    @property
    def terms(self) -> list[Term]:
        return self.query.terms

    @property
    def keys(self) -> list[str]:
        return self.query.keys


def parse_query(query: str, *, plurals: bool = False) -> tuple[_Node, list[str]]:
    """The syntax tree and the prefilter keys of a query; raises ``WatchError``."""
    compiled = _compile_query(query, plurals)
    return compiled.root, list(compiled.keys)


def compile_watch(watch: Watch, *, plurals: bool = False) -> CompiledWatch:
    """A watch ready for a ``WatchMatcher``; raises ``WatchError``."""
    return CompiledWatch(watch, _compile_query(watch.query, plurals))


def parse_terms(query: str) -> list[str]:
    """The terms of a query, as written (without quotes), after validating it in full;
    raises ``WatchError``."""
    return [t.text for t in _compile_query(query, False).terms]


MAX_NAME_CHARS = 200
MAX_ID_CHARS = 200
MAX_WEBHOOK_CHARS = 2048
MAX_HOST_CHARS = 253
MAX_LABEL_CHARS = 63
MAX_RATE_LIMIT = 1_000_000
# C0 and C1 controls (NUL, tab, newline, escape...), line and paragraph separators, and lone
# surrogates (not encodable as UTF-8) have no place in a watch's name or query.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_URL_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_HOST_FORBIDDEN = re.compile(r"[^a-z0-9_-]")


def _shown(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _check_text(what: str, text: str) -> None:
    bad = _CONTROL.search(text)
    if bad is not None:
        raise WatchError(f"{what} contains control character U+{ord(bad.group()):04X} "
                         f"(at character {bad.start()})")


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        raise WatchError(f"watch name must be a string, not {type(name).__name__}")
    name = name.strip()
    if len(name) > MAX_NAME_CHARS:
        raise WatchError(f"watch name is {len(name)} characters; the limit is {MAX_NAME_CHARS}")
    _check_text("watch name", name)
    if not tokens(name):
        raise WatchError("a watch needs a name with at least one word")
    return name


def _check_query(query: object, plurals: bool) -> str:
    if not isinstance(query, str):
        raise WatchError(f"watch query must be a string, not {type(query).__name__}")
    query = query.strip()
    _check_text("watch query", query)
    # The length, the syntax and the limits of the query language; parsed as the registry
    # will compile it (``plurals``), so the registry finds it in the cache of parsed queries.
    _compile_query(query, plurals)
    return query


def _check_port(netloc: str) -> None:
    """The port as written: digits in 1..65535 (``urlsplit`` reads ``+80`` or ``[::1]x``
    differently across Python versions, and ``:0`` is no port to deliver to)."""
    hostport = netloc.rpartition("@")[2]
    if hostport.startswith("["):
        rest = hostport[hostport.find("]") + 1:]
        if rest and not rest.startswith(":"):
            raise WatchError(f"webhook URL: unexpected {_shown(rest, 20)} after the IPv6 address")
        port = rest[1:]
    else:
        port = hostport.partition(":")[2]
    if not port:
        return
    if not (port.isascii() and port.isdigit()):
        raise WatchError(f"webhook URL: port {_shown(port, 20)} is not a number")
    if not 1 <= int(port) <= 65535:
        raise WatchError(f"webhook URL: port {int(port)} is out of range 1-65535")


def _check_host(host: str, bracketed: bool) -> None:
    if bracketed:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise WatchError(f"webhook URL: [{_shown(host, 60)[1:-1]}] is not an IPv6 address"
                             ) from None
        return
    name = host[:-1] if host.endswith(".") else host  # a fully qualified name's final dot
    if len(name) > MAX_HOST_CHARS:
        raise WatchError(f"webhook URL: the host is {len(name)} characters; the limit is "
                         f"{MAX_HOST_CHARS}")
    total = -1
    for label in name.split("."):
        if not label:
            raise WatchError(f"webhook URL: empty label in host {_shown(host)}")
        ace = label
        if not label.isascii():  # an internationalised name: its labels as DNS sees them
            try:
                ace = label.encode("idna").decode("ascii")
            except UnicodeError as exc:
                raise WatchError(f"webhook URL: host label {_shown(label, 30)} is not a valid "
                                 f"internationalised label ({exc})") from None
        if len(ace) > MAX_LABEL_CHARS:
            raise WatchError(f"webhook URL: a host label is {len(ace)} characters; the limit "
                             f"is {MAX_LABEL_CHARS}")
        bad = _HOST_FORBIDDEN.search(ace)
        if bad is not None:
            raise WatchError(f"webhook URL: character {bad.group()!r} is not allowed in a host "
                             "name")
        total += len(ace) + 1
    if total > MAX_HOST_CHARS:
        raise WatchError(f"webhook URL: the host is {total} characters in DNS form; the limit "
                         f"is {MAX_HOST_CHARS}")


def _check_webhook_url(url: object) -> None:
    """The syntax of a webhook URL. Whether its host may be a target (DNS, the SSRF guard) is
    ``agents.webhook.core.refusal_reason``: a separate, asynchronous step."""
    if not isinstance(url, str):
        raise WatchError(f"webhook URL must be a string, not {type(url).__name__}")
    if len(url) > MAX_WEBHOOK_CHARS:
        raise WatchError(f"webhook URL is {len(url)} characters; the limit is "
                         f"{MAX_WEBHOOK_CHARS}")
    _check_url_text(url)


@lru_cache(maxsize=4096)  # desks share hooks; only valid URLs are remembered (a raise is not)
def _check_url_text(url: str) -> None:
    bad = _URL_FORBIDDEN.search(url)
    if bad is not None:
        raise WatchError(f"webhook URL contains whitespace or control character "
                         f"U+{ord(bad.group()):04X} (at character {bad.start()})")
    if "\\" in url:  # read as "/" by browsers, as a character by urllib: never guess
        raise WatchError("webhook URL contains a backslash; write / or %5C")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:  # "Invalid IPv6 URL", a bracketed host that is no address
        raise WatchError(f"webhook URL {_shown(url)} is malformed: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise WatchError(f"webhook URL {_shown(url)} must start with http:// or https://")
    if not host:
        raise WatchError(f"webhook URL {_shown(url)} has no host")
    if parts.netloc.count("@") > 1:
        raise WatchError("webhook URL: write an @ in the user name or password as %40")
    _check_port(parts.netloc)
    try:
        parts.port  # noqa: B018 - raises ValueError on what _check_port let through
    except ValueError as exc:
        raise WatchError(f"webhook URL {_shown(url)} is malformed: {exc}") from None
    _check_host(host, bracketed="[" in parts.netloc.rpartition("@")[2])


def _check_rate_limit(limit: object) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise WatchError("rate limit must be a whole number of alerts per window, not "
                         f"{type(limit).__name__}")
    if limit == 0:
        raise WatchError("rate limit 0 is not allowed: omit the rate limit to use the default "
                         "(WIREWATCH_ALERT_RATE_LIMIT)")
    if not 1 <= limit <= MAX_RATE_LIMIT:
        shown = str(limit) if abs(limit) < 10**18 else f"a number of {limit.bit_length()} bits"
        raise WatchError(f"rate limit must be between 1 and {MAX_RATE_LIMIT:,} alerts per "
                         f"window, not {shown}")


def validate_watch(name: object, query: object = None, *, webhook_url: object = None,
                   rate_limit: object = None, plurals: bool = False) -> tuple[str, str]:
    """Check everything a watch is made of, wherever it comes from (the CLI, the HTTP API, the
    watches file, a record on news.watches); return its name and query as stored (stripped;
    the query defaults to the name). Raises ``WatchError`` with the reason, never anything
    else, whatever the values' types.

    * name: a string of at most ``MAX_NAME_CHARS`` characters (once stripped) with at least one
      word and no control characters (C0/C1 controls, line separators, lone surrogates);
    * query: a string (or None: the name) without control characters, in the query language
      (at most ``MAX_QUERY_CHARS`` characters...);
    * webhook_url: None, or an http(s) URL of at most ``MAX_WEBHOOK_CHARS`` characters without
      whitespace, control characters or backslashes, with a host (at most ``MAX_HOST_CHARS``
      characters, labels of at most ``MAX_LABEL_CHARS``; letters, digits, "-" and "_", or an
      internationalised name, or a bracketed IPv6 address) and a port, if any, in 1..65535.
      Whether the host may be a target is checked apart: ``agents.webhook.core.refusal_reason``;
    * rate_limit: None (the configured default), or an int (not a bool) from 1 to
      ``MAX_RATE_LIMIT``; 0 is refused rather than read as "the default".

    ``plurals`` only says how to parse the query (as the registry that will compile it does,
    so it is parsed once); it never changes what is refused."""
    checked_name = _check_name(name)
    checked_query = _check_query(checked_name if query is None else query, plurals)
    if webhook_url is not None:
        _check_webhook_url(webhook_url)
    if rate_limit is not None:
        _check_rate_limit(rate_limit)
    return checked_name, checked_query


def check_watch(watch: Watch, *, plurals: bool = False) -> None:
    """Validate a watch record read from news.watches, which any producer may write:
    ``decode`` checks no field's type, so this does, then ``validate_watch``; raises
    ``WatchError``. ``plurals``: the registry's, so the query is parsed once."""
    if not isinstance(watch.id, str) or not watch.id:
        raise WatchError("watch id must be a non-empty string")
    if len(watch.id) > MAX_ID_CHARS:
        raise WatchError(f"watch id is {len(watch.id)} characters; the limit is {MAX_ID_CHARS}")
    _check_text("watch id", watch.id)
    if not isinstance(watch.query, str):  # None is "the name" only when making a watch
        raise WatchError(f"watch query must be a string, not {type(watch.query).__name__}")
    created = watch.created_at
    if isinstance(created, bool) or not isinstance(created, int | float):
        raise WatchError(f"watch created_at must be a number, not {type(created).__name__}")
    validate_watch(watch.name, watch.query, webhook_url=watch.webhook_url,
                   rate_limit=watch.rate_limit, plurals=plurals)


def make_watch(name: str, query: str | None = None, *, created_at: float | None = None,
               webhook_url: str | None = None, rate_limit: int | None = None) -> Watch:
    """A validated watch (``validate_watch``; raises ``WatchError``); its id derives from the
    folded name, so adding it twice is a no-op."""
    checked_name, checked_query = validate_watch(name, query, webhook_url=webhook_url,
                                                 rate_limit=rate_limit)
    return Watch(id=stable_id("watch", normalize(name), length=12), name=checked_name,
                 query=checked_query,
                 created_at=time.time() if created_at is None else created_at,
                 webhook_url=webhook_url, rate_limit=rate_limit)


def load_watch_file(path: Path) -> list[Watch]:
    """Watches from a text file: one per line, ``name: query`` or just ``query``; # comments."""
    watches: list[Watch] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, query = line.partition(":")
        try:
            watches.append(make_watch(name, query if sep else None, created_at=0.0))
        except WatchError as exc:
            raise WatchError(f"{path}:{number}: {exc}") from None
    return watches


# --------------------------------------------------------------------------------------------
# Matching


# ASCII letters and digits lower-cased, every other byte a space: for text whose only non-ASCII
# characters are not letters or digits (£, curly quotes, dashes) this gives exactly the tokens of
# ``streams.text.tokens`` with the offsets of the original, far faster than the regex.
_TABLE = bytes((c | 0x20) if 65 <= c <= 90 else c if (48 <= c <= 57 or 97 <= c <= 122) else 32
               for c in range(256))
_WORD_CHAR = re.compile(r"[^\W_]")
_ASCII = bytes(range(128))


def _flat(text: str) -> str | None:
    """``text`` with every non-token character a space, same length; None when it holds
    non-ASCII letters or digits (those need ``streams.text`` folding)."""
    if not text.isascii():
        # Its non-ASCII characters (£, curly quotes, dashes, mostly), picked out in C: a regex
        # over the whole text costs ~30 µs.
        other = text.encode("utf-8", "surrogatepass").translate(None, _ASCII)
        if _WORD_CHAR.search(other.decode("utf-8", "surrogatepass")) is not None:
            return None
    return text.encode("ascii", "replace").translate(_TABLE).decode("ascii")


def _split_odd(found: list[str]) -> list[str] | None:
    """``found`` (folded tokens) cut at spaces without empty pieces, or None when it needs no
    cut: a few characters fold (NFKD) to nothing (U+FF9E), to a space (U+FC5E, U+037A) or to
    words and spaces (U+FDFA), and such a token would shift every token index after it in a
    joined stream (the kernel splits it at the spaces; the Python matcher counted them)."""
    joined = " ".join(found)
    if "" in found or joined.count(" ") != len(found) - 1:
        return [piece for piece in joined.split(" ") if piece]
    return None


def _tokens(text: str) -> list[str]:
    """``streams.text.tokens`` with every token non-empty and without a space."""
    found = tokens(text)
    if text.isascii():
        return found
    cut = _split_odd(found)
    return found if cut is None else cut


def _token_spans(text: str) -> tuple[list[int], list[int]]:
    """The starts and ends of ``_tokens(text)`` in ``text``: the pieces of a token cut by
    ``_split_odd`` each span the whole character(s) they come from."""
    found = token_spans(text)
    if _split_odd([t.text for t in found]) is None:
        return [t.start for t in found], [t.end for t in found]
    starts: list[int] = []
    ends: list[int] = []
    for t in found:
        for piece in t.text.split(" "):
            if piece:
                starts.append(t.start)
                ends.append(t.end)
    return starts, ends


_Place = tuple[int, int, int, str]  # (field, first token, last token, term as written)


def _token_starts(flat: str) -> list[int]:
    """Where each token of a flat text starts: where a space is followed by a non-space. In
    numpy, ~2x faster than any pure Python way; it is needed by every article with a hit."""
    solid = np.frombuffer(flat.encode("ascii"), dtype=np.uint8) != 32
    starts: list[int] = (np.flatnonzero(solid[1:] & ~solid[:-1]) + 1).tolist()
    if solid.size and solid[0]:
        starts.insert(0, 0)
    return starts


class _Field:
    """One text field of an article: its folded tokens as ``" tok tok tok "``."""

    __slots__ = ("flat", "joined", "text", "toks")

    def __init__(self, text: str) -> None:
        self.text = text
        self.flat = _flat(text)
        self.toks = self.flat.split() if self.flat is not None else _tokens(text)
        self.joined = " " + " ".join(self.toks) + " " if self.toks else " "


class _Ctx:
    """One article, with its folded fields and caches shared by every watch."""

    __slots__ = ("_cache", "_combined", "_meta", "_places", "_records", "_snippets", "_spans",
                 "_terms", "article", "fields", "keys")

    def __init__(self, article: Article, fields: tuple[_Field, _Field]) -> None:
        self.article = article
        self.fields = fields
        self.keys: set[str] | None = None  # the matcher's keys in the article; None: unknown
        # Per field: token starts, and ends (None: start + token length)
        self._spans: list[tuple[list[int], list[int] | None] | None] = [None, None]
        self._cache: dict[str, list[tuple[int, int, int]]] = {}
        self._meta: dict[str, set[str]] | None = None
        self._snippets: dict[tuple[int, int, int], str] = {}
        self._records: dict[_Place, Match] = {}
        self._places: dict[tuple[str, str], list[_Place]] = {}
        self._terms: dict[tuple[str, str], list[Match]] = {}
        self._combined: dict[tuple[tuple[str, str], ...], list[Match]] = {}

    def terms(self, query: _Query) -> list[str]:
        """The matched terms of a query that matched, in the query's order, without making
        its offsets and snippets (the alert stage makes those for the alerts it sends)."""
        if not query.simple:
            return _terms_in_evidence(self, query.root, query.terms)
        terms: list[Term] = []
        meta: list[str] = []
        query.root.gather(self, terms, meta)
        return list(dict.fromkeys([t.text for t in terms] + meta))

    def matches(self, query: _Query) -> list[Match]:
        """What ``_matches`` gives for a query that matched, from work shared across the
        article's queries: each term's places are found once, however many queries name it."""
        root = query.root
        if isinstance(root, Term):
            return self._term_matches(root)
        if not query.simple:
            return _matches(self, root)
        terms: list[Term] = []
        meta: list[str] = []
        root.gather(self, terms, meta)
        if len(terms) == 1:
            return self._term_matches(terms[0])  # an OR with one branch true, usually
        key = tuple((t.text, t.sig) for t in terms)
        found = self._combined.get(key)
        if found is None:
            found = self._combined[key] = self._combine(terms)
        return found

    def _combine(self, terms: list[Term]) -> list[Match]:
        """Up to MAX_MATCHES_PER_WATCH of the terms' places together, in article order."""
        places: list[_Place] = []
        for term in terms:
            places += self.places(term)
        return [self.record(p) for p in sorted(set(places))[:MAX_MATCHES_PER_WATCH]]

    def _term_matches(self, term: Term) -> list[Match]:
        key = (term.text, term.sig)
        found = self._terms.get(key)
        if found is None:
            found = [] if term.field in META_FIELDS else [self.record(p) for p in self.places(term)]
            self._terms[key] = found
        return found

    def places(self, term: Term) -> list[_Place]:
        """The first ``MAX_MATCHES_PER_WATCH`` places of a title/text term: no watch shows more,
        so none needs more of any one term."""
        key = (term.text, term.sig)
        found = self._places.get(key)
        if found is None:
            text = term.text
            found = self._places[key] = [(f, i, j, text) for f, i, j
                                         in self.occurrences(term)[:MAX_MATCHES_PER_WATCH]]
        return found

    def occurrences(self, term: Term) -> list[tuple[int, int, int]]:
        """(field, first token, last token) of every occurrence of a title/text term."""
        found = self._cache.get(term.sig)
        if found is not None:
            return found
        found = []
        key, last, verify = term.key, len(term.parts) - 1, term.verify
        for f in ((0, 1) if term.field is None else (TEXT_FIELDS.index(term.field),)):
            joined = self.fields[f].joined
            pos = joined.find(key)
            if pos < 0:
                continue
            toks = self.fields[f].toks
            limit = len(toks) - last
            i, counted = 0, 0
            while pos >= 0:
                i += joined.count(" ", counted, pos)  # the token index where the key starts
                counted = pos
                if i >= limit:
                    break
                for k, token, kind in verify:
                    tok = toks[i + k]
                    if kind == EXACT:
                        if tok != token:
                            break
                    elif kind == PLURAL:
                        if singular(tok) != token:
                            break
                    elif not tok.startswith(token):
                        break
                else:
                    found.append((f, i, i + last))
                pos = joined.find(key, pos + 1)
        self._cache[term.sig] = found
        return found

    def meta_match(self, term: Term) -> bool:
        meta = self._meta
        if meta is None:
            a = self.article
            meta = self._meta = {
                "entity": {_meta_value(e.name) for e in a.entities},
                "source": {_meta_value(a.source or "")},
                "lang": {_meta_value(a.language or "")},
            }
        values = meta[term.field or ""]
        joined = _JOIN.join(p for p, _ in term.parts)
        if term.parts[-1][1] == PREFIX:
            return any(v.startswith(joined) for v in values)
        return joined in values

    def record(self, place: _Place) -> Match:
        """The ``Match`` for a place; one object per place, shared by every hit showing it."""
        record = self._records.get(place)
        if record is None:
            record = self._records[place] = self._new_record(place[3], *place[:3])
        return record

    def _new_record(self, term: str, f: int, i: int, j: int) -> Match:
        spans = self._spans[f]
        field = self.fields[f]
        if spans is None:
            # A flat token is as long as the original: its start says where it ends.
            spans = _token_spans(field.text) if field.flat is None else (_token_starts(field.flat), None)
            self._spans[f] = spans
        starts, ends = spans
        start = starts[i]
        end = ends[j] if ends is not None else starts[j] + len(field.toks[j])
        snippet = self._snippets.get((f, start, end))
        if snippet is None:
            snippet = self._snippets[(f, start, end)] = _snippet(field.text, start, end)
        return Match(term=term, field=TEXT_FIELDS[f], start=start, end=end, snippet=snippet)


def _collected(ctx: _Ctx, root: _Node) -> tuple[list[tuple[str, int, int, int]], list[str]]:
    """Every (term, field, first token, last token) that is evidence, in article order, and
    the meta terms that hold (for a query that matched)."""
    found: set[tuple[str, int, int, int]] = set()
    meta: list[str] = []
    root.collect(ctx, found, meta)
    return sorted(found, key=lambda o: (o[1], o[2], o[3], o[0])), meta


def _terms_in_evidence(ctx: _Ctx, root: _Node, terms: list[Term]) -> list[str]:
    """The terms (``terms``: the query's, in its order) that are evidence, as written, then
    the meta terms that hold: the plain definition of a hit's ``terms``. Each term by itself,
    not by its text: ``title:x OR (y AND x)`` matched in the body is ``["y", "x"]``, as the
    terms that matched come in the query, whatever ``title:x`` (no evidence) comes first."""
    found: list[Term] = []
    meta: list[str] = []
    root.gather(ctx, found, meta)
    used = {id(t) for t in found}
    return list(dict.fromkeys([t.text for t in terms if id(t) in used] + meta))


def _static_terms(root: _Node) -> list[str] | None:
    """The matched terms of a query without OR or NEAR: the same whenever it matches (its
    positive terms, then its meta terms); None for other queries."""
    terms: list[str] = []
    meta: list[str] = []

    def walk(node: _Node) -> bool:
        if isinstance(node, Term):
            if node.field in META_FIELDS:
                meta.append(f"{node.field}:{node.text}")
            else:
                terms.append(node.text)
            return True
        if isinstance(node, Not):
            return True  # what is absent is no evidence
        if isinstance(node, And):
            return all(walk(c) for c in node.children)
        return False  # OR, NEAR: which terms are evidence depends on the article

    return list(dict.fromkeys(terms + meta)) if walk(root) else None


def _matches(ctx: _Ctx, root: _Node) -> list[Match]:
    """The first ``MAX_MATCHES_PER_WATCH`` places of the evidence, in article order (for a
    query that matched): the plain definition of a hit's matches."""
    ordered, _ = _collected(ctx, root)
    return [ctx.record((f, i, j, term)) for term, f, i, j in ordered[:MAX_MATCHES_PER_WATCH]]


@lru_cache(maxsize=65536)
def _meta_value(value: str) -> str:
    return _JOIN.join(_tokens(value))


_WORD_HEAD = re.compile(r"\S+")


def _snippet(text: str, start: int, end: int) -> str:
    left = max(0, start - SNIPPET_RADIUS)
    right = min(len(text), end + SNIPPET_RADIUS)
    # Widen to word boundaries so a snippet never starts or ends mid-word; in C, since a
    # snippet is made for every place a hit shows.
    if left > 0 and not text[left - 1].isspace():
        before = text[max(0, left - SNIPPET_RADIUS):left].rsplit(None, 1)
        left -= len(before[-1])  # the part of the word before ``left``
        while left > 0 and not text[left - 1].isspace():  # a word longer than the window
            left -= 1
    head = _WORD_HEAD.match(text, right)
    if head is not None:
        right = head.end()
    body = " ".join(text[left:right].split())
    return ("…" if left > 0 else "") + body + ("…" if right < len(text) else "")


def _joined_tokens(text: str) -> str:
    """The folded tokens of a text separated by spaces: what the kernel scans of a text
    with non-ASCII letters or digits (it folds the others itself), as ``_tokens`` cuts them."""
    found = tokens(text)
    joined = " ".join(found)
    if "" in found or joined.count(" ") != len(found) - 1:
        return " ".join([piece for piece in joined.split(" ") if piece])
    return joined


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
            self._build(watches, plurals, use_kernel=compiled and watchkernel is not None)
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

    def _build_kernel(self, key_ids: dict[str, int]) -> watchkernel.Kernel:
        """The compiled kernel over this matcher's keys and queries (it reads each query's
        ``plan`` and ``static``, and the members of each)."""
        return watchkernel.Kernel(key_ids, self._wake, self._queries, self._members,
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


class WatchRegistry:
    """The current set of watches; a change rebuilds the matcher and swaps it in whole,
    so a match in progress never sees half an update.

    ``apply`` rebuilds synchronously. In the worker use ``stage`` per change and
    ``await rebuild_async()`` per batch (or ``await apply_async``): the build runs in a
    thread and concurrent calls coalesce into as few builds as possible."""

    def __init__(self, watches: Iterable[Watch] = (), *, plurals: bool = False) -> None:
        self.plurals = plurals
        self._compiled: dict[str, CompiledWatch] = {}
        with _gc_paused():
            for w in watches:
                self._compiled[w.id] = compile_watch(w, plurals=plurals)
        self._version = 0
        self._built = 0
        self._lock: asyncio.Lock | None = None
        self.matcher = WatchMatcher(self._compiled.values())

    def stage(self, watch_id: str, watch: Watch | None) -> bool:
        """Record a change without rebuilding (validates; raises ``WatchError``); True if the
        set changed."""
        if watch is None:
            if self._compiled.pop(watch_id, None) is None:
                return False
        else:
            old = self._compiled.get(watch_id)
            if old is not None and old.watch == watch:
                return False
            self._compiled[watch_id] = compile_watch(watch, plurals=self.plurals)
        self._version += 1
        return True

    def rebuild(self) -> None:
        if self._built != self._version:
            version = self._version
            self.matcher = WatchMatcher(list(self._compiled.values()), previous=self.matcher)
            self._built = version

    def apply(self, watch_id: str, watch: Watch | None) -> None:
        """Add or replace a watch, or remove it (``None``: a tombstone on news.watches)."""
        if self.stage(watch_id, watch):
            self.rebuild()

    async def rebuild_async(self) -> None:
        """Build a matcher for every staged change in a worker thread, then swap it in."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        target = self._version
        async with self._lock:
            if self._built >= target:
                return  # a build that started after our change already covered it
            version = self._version
            snapshot = list(self._compiled.values())
            matcher = await asyncio.to_thread(WatchMatcher, snapshot, previous=self.matcher)
            if version > self._built:
                self.matcher = matcher
                self._built = version

    async def apply_async(self, watch_id: str, watch: Watch | None) -> None:
        """``apply`` with the rebuild off the event loop thread."""
        if self.stage(watch_id, watch):
            await self.rebuild_async()

    def get(self, watch_id: str) -> Watch | None:
        compiled = self._compiled.get(watch_id)
        return compiled.watch if compiled is not None else None

    def __len__(self) -> int:
        return len(self._compiled)
