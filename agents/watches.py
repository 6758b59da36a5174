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

Each watch has a small set of *required keys* (for OR all branches, for AND/NEAR the branch
that looks rarest: multi-word, long, not a stopword; NOT never counts) such that any matching
article contains at least one of them. One Aho-Corasick automaton (pyahocorasick) holds every
key of every watch; it runs once per article over the folded token stream
``" title tokens \\0 text tokens \\0 meta "`` (tokens joined by single spaces, so keys match on
token boundaries; wildcard and plural keys are token prefixes; entities, source and language
are appended as marked pseudo-tokens). Only the watches whose keys occur are evaluated in full,
so the cost per article depends on how many watches could match, not on how many exist.

Building a matcher for 100,000 watches takes on the order of a second. ``WatchRegistry.apply``
rebuilds synchronously (fine for a handful of watches or tests); a worker should call
``WatchRegistry.stage`` for each change it reads and then ``await registry.rebuild_async()``
once per batch (or ``await registry.apply_async(...)`` for one change): the new matcher is built
in ``asyncio.to_thread`` and swapped in as one attribute assignment, so a match in progress
never sees half an update and the event loop keeps running while it builds.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate, compress, repeat
from operator import add
from pathlib import Path

import ahocorasick

from streams.errors import WatchError
from streams.records import Article, Match, Watch, WatchHit, stable_id
from streams.text import normalize, token_spans, tokens

__all__ = ["parse_terms", "parse_query", "make_watch", "load_watch_file", "singular",
           "CompiledWatch", "compile_watch", "WatchMatcher", "WatchRegistry", "MAX_QUERY_CHARS", "MAX_TERMS",
           "MAX_DEPTH", "MAX_PHRASE_TOKENS", "MAX_NEAR", "MAX_MATCHES_PER_WATCH"]

MAX_QUERY_CHARS = 1000
MAX_TERMS = 50
MAX_DEPTH = 8
MAX_PHRASE_TOKENS = 16
MAX_NEAR = 50
MAX_MATCHES_PER_WATCH = 10
SNIPPET_RADIUS = 80
MIN_WILDCARD_PREFIX = 3

TEXT_FIELDS = ("title", "text")  # positional fields; index 0 and 1 in the token streams
META_FIELDS = ("entity", "source", "lang")
FIELDS = TEXT_FIELDS + META_FIELDS
_META_MARK = {"entity": "\x01e", "source": "\x01s", "lang": "\x01l"}
_SEP = "\x00"  # a pseudo-token between fields: no key ever spans it
_JOIN = "\x02"  # joins the tokens of one meta value into a single pseudo-token

EXACT, PLURAL, PREFIX = 0, 1, 2

_OPEN_QUOTES = {'"': '"', "“": "”", "„": "“"}
_STOP_CHARS = set('()"“”„')
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


@dataclass(slots=True, eq=False)
class Term(_Node):
    pos: int
    text: str  # as written, without quotes or "~"
    field: str | None  # None (title or text), or one of FIELDS
    parts: tuple[tuple[str, int], ...]  # (folded token or prefix, EXACT | PLURAL | PREFIX)
    key: str = ""  # the prefilter key: this string occurs in the stream wherever the term does
    cost: float = 0.0
    sig: tuple[object, ...] = ()
    verify: tuple[tuple[int, str, int], ...] = ()  # parts the key does not already prove

    def finish(self) -> None:
        self.sig = (self.field, self.parts)
        if self.field in META_FIELDS:
            joined = _JOIN.join(p for p, _ in self.parts)
            exact = self.parts[-1][1] != PREFIX
            self.key = " " + _META_MARK[self.field] + joined + (" " if exact else "")
            self.cost = {"lang": 1e6, "source": 1e5}.get(self.field, 1.0)
            return
        key = " "
        cost = 1e9
        proven = len(self.parts)
        for k, (token, kind) in enumerate(self.parts):
            if kind == EXACT:
                key += token + " "
                cost = min(cost, _token_cost(token))
                continue
            proven = k + 1 if kind == PREFIX else k
            if kind == PLURAL:
                token = token[:-1] if token.endswith("y") else token
            key += token
            cost = min(cost, 3 * _token_cost(token))
            break
        self.verify = tuple((k, t, kind) for k, (t, kind) in enumerate(self.parts)
                            if k >= proven)
        exact_tokens = key.count(" ") - 1
        self.key = key
        self.cost = cost / (1 + exact_tokens) if exact_tokens > 1 else cost

    def ev(self, ctx: _Ctx) -> bool:
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

    def spans(self, ctx: _Ctx) -> list[tuple[int, int, int, tuple[tuple[Term, int, int, int], ...]]]:
        return [(f, i, j, ((self, f, i, j),)) for f, i, j in ctx.occurrences(self)]


@dataclass(slots=True, eq=False)
class And(_Node):
    pos: int
    children: list[_Node]

    def ev(self, ctx: _Ctx) -> bool:
        return all(c.ev(ctx) for c in self.children)

    def collect(self, ctx: _Ctx, out: set[tuple[str, int, int, int]], meta: list[str]) -> None:
        for c in self.children:
            c.collect(ctx, out, meta)


@dataclass(slots=True, eq=False)
class Or(_Node):
    pos: int
    children: list[_Node]

    def ev(self, ctx: _Ctx) -> bool:
        return any(c.ev(ctx) for c in self.children)

    def collect(self, ctx: _Ctx, out: set[tuple[str, int, int, int]], meta: list[str]) -> None:
        for c in self.children:
            if c.ev(ctx):
                c.collect(ctx, out, meta)

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
        return bool(self.spans(ctx))

    def collect(self, ctx: _Ctx, out: set[tuple[str, int, int, int]], meta: list[str]) -> None:
        for _, _, _, leaves in self.spans(ctx):
            for term, f, i, j in leaves:
                out.add((term.text, f, i, j))


def _token_cost(token: str) -> float:
    """A guess at how common a token is (lower is rarer): the prefilter keys each AND by the
    child with the lowest cost so common words do not wake up many watches."""
    if token in _STOPWORDS:
        return 1000.0
    if token.isdigit():
        return 50.0
    return 100.0 / max(1, len(token)) ** 1.5


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
    while i < size:
        ch = query[i]
        if ch.isspace():
            i += 1
        elif ch == "(":
            out.append(_Tok("LP", i))
            i += 1
        elif ch == ")":
            out.append(_Tok("RP", i))
            i += 1
        elif ch in _OPEN_QUOTES or ch == "”":
            close = _OPEN_QUOTES.get(ch, ch)
            end = query.find(close, i + 1)
            if close == "”":  # “...” may also be closed by a straight quote
                alt = query.find('"', i + 1)
                end = alt if end < 0 or (0 <= alt < end) else end
            if end < 0:
                raise _err(i, "unterminated quote")
            tok = _Tok("PHRASE", i, query[i + 1:end])
            i = end + 1
            if i < size and query[i] == "~":
                tok.n = 1  # plurals
                i += 1
            out.append(tok)
        else:
            j = i
            while j < size and query[j] not in _STOP_CHARS and not query[j].isspace():
                j += 1
            word = query[i:j]
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
                j = i + colon + 1  # lex what follows the colon on its own
            else:
                out.append(_Tok("WORD", i, word))
            i = j
    out.append(_Tok("EOF", size))
    return out


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
        node = self.parse_or()
        tok = self.peek()
        if tok.kind != "EOF":
            what = "')'" if tok.kind == "RP" else repr(tok.text or tok.kind)
            raise _err(tok.pos, f"unexpected {what}")
        return node

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
        parts: list[tuple[str, int]] = []
        shown: list[str] = []
        for word, wpos in words:
            plural = plural_all or self.plurals
            if word.endswith("~"):
                word = word[:-1]
                plural = True
            star = word.endswith("*")
            base = word[:-1] if star else word
            if "*" in base:
                raise _err(wpos + base.find("*"), "'*' is only allowed at the end of a word")
            folded = tokens(base)
            if star and (not folded or len(folded[-1]) < MIN_WILDCARD_PREFIX):
                raise _err(wpos + len(base), f"a wildcard needs at least {MIN_WILDCARD_PREFIX} "
                           "letters before '*'")
            shown.append(word)
            for n, t in enumerate(folded):
                if star and n == len(folded) - 1:
                    parts.append((t, PREFIX))
                elif plural and scope not in META_FIELDS:
                    parts.append((singular(t), PLURAL))
                else:
                    parts.append((t, EXACT))
        if not parts:
            return None
        if len(parts) > MAX_PHRASE_TOKENS:
            raise _err(pos, f"a phrase of {len(parts)} words; the limit is {MAX_PHRASE_TOKENS}")
        term = Term(pos, " ".join(shown), scope, tuple(parts))
        term.finish()
        self.terms.append(term)
        if len(self.terms) > MAX_TERMS:
            raise _err(pos, f"more than {MAX_TERMS} terms; that is the limit")
        return term


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
        return node.cost, [node.key]
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


@dataclass(slots=True)
class CompiledWatch:
    """A watch with its parsed query and prefilter keys."""

    watch: Watch
    root: _Node
    terms: list[Term]
    keys: list[str]


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


def parse_query(query: str, *, plurals: bool = False) -> tuple[_Node, list[str]]:
    """The syntax tree and the prefilter keys of a query; raises ``WatchError``."""
    root, _, keys = _checked(query, plurals)
    return root, keys


def compile_watch(watch: Watch, *, plurals: bool = False) -> CompiledWatch:
    """A watch ready for a ``WatchMatcher``; raises ``WatchError``."""
    root, terms, keys = _checked(watch.query, plurals)
    return CompiledWatch(watch, root, terms, keys)


def parse_terms(query: str) -> list[str]:
    """The terms of a query, as written (without quotes), after validating it in full;
    raises ``WatchError``."""
    return [t.text for t in _checked(query, False)[1]]


def make_watch(name: str, query: str | None = None, *, created_at: float | None = None) -> Watch:
    """A validated watch; its id derives from the folded name, so adding it twice is a no-op."""
    query = (name if query is None else query).strip()
    parse_query(query)
    if not tokens(name):
        raise WatchError("a watch needs a name with at least one word")
    return Watch(id=stable_id("watch", normalize(name), length=12), name=name.strip(),
                 query=query, created_at=time.time() if created_at is None else created_at)


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
_NONASCII_WORD = re.compile(r"[^\W\x00-\x7f]")


def _flat(text: str) -> str | None:
    """``text`` with every non-token character a space, same length; None when it holds
    non-ASCII letters or digits (those need ``streams.text`` folding)."""
    if text.isascii() or _NONASCII_WORD.search(text) is None:
        return text.encode("ascii", "replace").translate(_TABLE).decode("ascii")
    return None


class _Field:
    """One text field of an article: its folded tokens as ``" tok tok tok "``."""

    __slots__ = ("flat", "joined", "text", "toks")

    def __init__(self, text: str) -> None:
        self.text = text
        self.flat = _flat(text)
        self.toks = self.flat.split() if self.flat is not None else tokens(text)
        self.joined = " " + " ".join(self.toks) + " " if self.toks else " "


class _Ctx:
    """One article, with its folded fields and caches shared by every watch."""

    __slots__ = ("_cache", "_meta", "_snippets", "_spans", "article", "fields")

    def __init__(self, article: Article, fields: tuple[_Field, _Field]) -> None:
        self.article = article
        self.fields = fields
        self._spans: list[list[tuple[int, int]] | None] = [None, None]
        self._cache: dict[tuple[object, ...], list[tuple[int, int, int]]] = {}
        self._meta: dict[str, set[str]] | None = None
        self._snippets: dict[tuple[int, int, int], str] = {}

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

    def match_record(self, term: str, f: int, i: int, j: int) -> Match:
        spans = self._spans[f]
        field = self.fields[f]
        if spans is None:
            if field.flat is None:
                spans = [(t.start, t.end) for t in token_spans(field.text)]
            else:
                # Token starts in C: offsets of the space-split pieces, keeping non-empty ones.
                pieces = field.flat.split(" ")
                starts = compress(accumulate(map(add, map(len, pieces), repeat(1)), initial=0),
                                  pieces)
                spans = [(start, start + len(tok)) for start, tok in zip(starts, field.toks, strict=True)]
            self._spans[f] = spans
        start, end = spans[i][0], spans[j][1]
        snippet = self._snippets.get((f, start, end))
        if snippet is None:
            snippet = self._snippets[(f, start, end)] = _snippet(field.text, start, end)
        return Match(term=term, field=TEXT_FIELDS[f], start=start, end=end, snippet=snippet)


@lru_cache(maxsize=65536)
def _meta_value(value: str) -> str:
    return _JOIN.join(tokens(value))


def _snippet(text: str, start: int, end: int) -> str:
    left = max(0, start - SNIPPET_RADIUS)
    right = min(len(text), end + SNIPPET_RADIUS)
    # Widen to word boundaries so a snippet never starts or ends mid-word.
    while left > 0 and not text[left - 1].isspace():
        left -= 1
    while right < len(text) and not text[right].isspace():
        right += 1
    body = " ".join(text[left:right].split())
    return ("…" if left > 0 else "") + body + ("…" if right < len(text) else "")


def _meta_stream(article: Article) -> str:
    parts = [_META_MARK["entity"] + _meta_value(e.name) for e in article.entities]
    if article.source:
        parts.append(_META_MARK["source"] + _meta_value(article.source))
    if article.language:
        parts.append(_META_MARK["lang"] + _meta_value(article.language))
    return " ".join(parts)


class WatchMatcher:
    """An immutable index of watches; ``match`` finds every watch an article hits."""

    def __init__(self, watches: Iterable[Watch | CompiledWatch], *, plurals: bool = False) -> None:
        compiled = [w if isinstance(w, CompiledWatch) else compile_watch(w, plurals=plurals)
                    for w in watches]
        self._compiled: dict[str, CompiledWatch] = {c.watch.id: c for c in compiled}
        self.watches: dict[str, Watch] = {c.watch.id: c.watch for c in compiled}
        self._list: list[CompiledWatch] = list(self._compiled.values())
        by_key: dict[str, list[int]] = {}
        for n, c in enumerate(self._list):
            for key in c.keys:
                by_key.setdefault(key, []).append(n)
        self._groups: list[tuple[int, ...]] = []
        self._automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
        for key, members in by_key.items():
            self._automaton.add_word(key, len(self._groups))
            self._groups.append(tuple(members))
        if self._groups:
            self._automaton.make_automaton()

    def __len__(self) -> int:
        return len(self.watches)

    def candidates(self, article: Article) -> tuple[_Ctx, set[int]]:
        """The per-article context and the indexes of watches whose prefilter keys occur."""
        fields = (_Field(article.title), _Field(article.text))
        ctx = _Ctx(article, fields)
        if not self._groups:
            return ctx, set()
        stream = fields[0].joined + _SEP + fields[1].joined + _SEP + " " + _meta_stream(article) + " "
        groups = {g for _, g in self._automaton.iter(stream)}
        found: set[int] = set()
        all_groups = self._groups
        for g in groups:
            found.update(all_groups[g])
        return ctx, found

    def match(self, article: Article | str, text: str | None = None) -> list[WatchHit]:
        """Every watch ``article`` hits, by watch name. ``match(title, text)`` still works
        (without entities, source or language)."""
        if isinstance(article, str):
            article = Article(id="", title=article, text=text or "")
        if not self._groups:
            return []
        ctx, found = self.candidates(article)
        return self._evaluate(ctx, sorted(found))

    def match_exhaustive(self, article: Article | str, text: str | None = None) -> list[WatchHit]:
        """``match`` without the prefilter: every watch evaluated in full (for tests)."""
        if isinstance(article, str):
            article = Article(id="", title=article, text=text or "")
        ctx = _Ctx(article, (_Field(article.title), _Field(article.text)))
        return self._evaluate(ctx, range(len(self._list)))

    def _evaluate(self, ctx: _Ctx, indexes: Iterable[int]) -> list[WatchHit]:
        hits = []
        for n in indexes:
            compiled = self._list[n]
            if compiled.root.ev(ctx):
                hits.append(self._hit(ctx, compiled))
        hits.sort(key=lambda h: h.watch_name)
        return hits

    def _hit(self, ctx: _Ctx, compiled: CompiledWatch) -> WatchHit:
        found: set[tuple[str, int, int, int]] = set()
        meta: list[str] = []
        compiled.root.collect(ctx, found, meta)
        ordered = sorted(found, key=lambda o: (o[1], o[2], o[3], o[0]))
        matches = [ctx.match_record(term, f, i, j)
                   for term, f, i, j in ordered[:MAX_MATCHES_PER_WATCH]]
        terms = list(dict.fromkeys([o[0] for o in ordered] + meta))
        watch = compiled.watch
        return WatchHit(watch_id=watch.id, watch_name=watch.name, terms=terms, matches=matches)


class WatchRegistry:
    """The current set of watches; a change rebuilds the matcher and swaps it in whole,
    so a match in progress never sees half an update.

    ``apply`` rebuilds synchronously. In the worker use ``stage`` per change and
    ``await rebuild_async()`` per batch (or ``await apply_async``): the build runs in a
    thread and concurrent calls coalesce into as few builds as possible."""

    def __init__(self, watches: Iterable[Watch] = (), *, plurals: bool = False) -> None:
        self.plurals = plurals
        self._compiled: dict[str, CompiledWatch] = {}
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
            self.matcher = WatchMatcher(list(self._compiled.values()))
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
            matcher = await asyncio.to_thread(WatchMatcher, snapshot)
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
