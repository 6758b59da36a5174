"""The query language of watches: its lexer, parser, syntax tree and limits.

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
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple, Protocol

from agents.watch.keys import (
    EXACT,
    FIELDS,
    META_FIELDS,
    MIN_WILDCARD_PREFIX,
    PLURAL,
    PREFIX,
    _term_props,
    _TermProps,
    _tokens,
    singular,
)
from streams.errors import WatchError

__all__ = ["And", "Near", "Not", "Or", "Term",
           "MAX_QUERY_CHARS", "MAX_TERMS", "MAX_DEPTH", "MAX_PHRASE_TOKENS", "MAX_NEAR"]

MAX_QUERY_CHARS = 1000
MAX_TERMS = 50
MAX_DEPTH = 8
MAX_PHRASE_TOKENS = 16
MAX_NEAR = 50
NEAR_PAIRS_SCANNED = 64  # more pairs of places than this: NEAR bisects (_near_pairs)

_OPEN_QUOTES = {'"': '"', "“": "”", "„": "“"}
# Spaces, then a parenthesis, a quote, or a bare word (which runs to a space, parenthesis or quote).
_LEX = re.compile(r'\s*(?:([()])|(["“”„])|([^\s()"“”„]+))')
_NONSPACE = re.compile(r"\S+")

# A place of a positional node: (field, first token, last token, its terms and their places).
_Span = tuple[int, int, int, tuple[tuple["Term", int, int, int], ...]]


class _Ctx(Protocol):
    """What the tree asks of an article (``article._Ctx`` answers, with its caches)."""

    keys: set[str] | None  # the keys found in the article; None: not looked for

    def occurrences(self, term: Term) -> list[tuple[int, int, int]]: ...

    def meta_match(self, term: Term) -> bool: ...


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

    def spans(self, ctx: _Ctx) -> list[_Span]:
        """Where a positional node holds: (field, first token, last token, its leaves)."""
        raise NotImplementedError

    def positional(self) -> bool:
        """Whether NEAR may take it: a title/text term, an OR of them, or a NEAR."""
        return False

    def cover(self) -> tuple[float, list[str]] | None:
        """(cost, keys): at least one key occurs in every article the node matches; None when
        no such set exists (a NOT, or an OR with such a branch)."""
        raise NotImplementedError

    def uncovered(self) -> _Node:
        """The part of a query to blame when it has no cover."""
        return self

    def proves(self) -> bool:
        """True when any one of the node's prefilter keys occurring proves the node matches: a
        term whose key is the whole term (no plural or mid-phrase wildcard left to check, and no
        title:/text: scope, since the key may occur in the other field), or an OR of such terms."""
        return False

    def has_near(self) -> bool:
        return False

    def static_terms(self, terms: list[str], meta: list[str]) -> bool:
        """Add the terms every match of the node shows (meta terms to ``meta``, as "field:text");
        False when which terms are evidence depends on the article (an OR, a NEAR)."""
        return False


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

    def spans(self, ctx: _Ctx) -> list[_Span]:
        return [(f, i, j, ((self, f, i, j),)) for f, i, j in ctx.occurrences(self)]

    def positional(self) -> bool:
        return self.field not in META_FIELDS

    def cover(self) -> tuple[float, list[str]] | None:
        return self.cost, list(self.keys)

    def proves(self) -> bool:
        return self.proven

    def static_terms(self, terms: list[str], meta: list[str]) -> bool:
        if self.field in META_FIELDS:
            meta.append(f"{self.field}:{self.text}")
        else:
            terms.append(self.text)
        return True


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

    def cover(self) -> tuple[float, list[str]] | None:
        return _cheapest(self.children)

    def uncovered(self) -> _Node:
        return self.children[0].uncovered()

    def has_near(self) -> bool:
        return any(c.has_near() for c in self.children)

    def static_terms(self, terms: list[str], meta: list[str]) -> bool:
        return all(c.static_terms(terms, meta) for c in self.children)


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

    def spans(self, ctx: _Ctx) -> list[_Span]:
        result = []
        for c in self.children:
            result.extend(c.spans(ctx))
        return result

    def positional(self) -> bool:
        return all(c.positional() for c in self.children)

    def cover(self) -> tuple[float, list[str]] | None:
        total, keys = 0.0, []
        for c in self.children:
            sub = c.cover()
            if sub is None:
                return None
            total += sub[0]
            keys.extend(sub[1])
        return total, keys

    def uncovered(self) -> _Node:
        for c in self.children:
            if c.cover() is None:
                return c.uncovered()
        return self

    def proves(self) -> bool:
        return all(c.proves() for c in self.children)

    def has_near(self) -> bool:
        return any(c.has_near() for c in self.children)


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

    def cover(self) -> tuple[float, list[str]] | None:
        return None

    def has_near(self) -> bool:
        return self.child.has_near()

    def static_terms(self, terms: list[str], meta: list[str]) -> bool:
        return True  # what is absent is no evidence


@dataclass(slots=True, eq=False)
class Near(_Node):
    pos: int
    left: _Node
    right: _Node
    n: int

    def spans(self, ctx: _Ctx) -> list[_Span]:
        left = self.left.spans(ctx)
        if not left:
            return []
        right = self.right.spans(ctx)
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

    def positional(self) -> bool:
        return True

    def cover(self) -> tuple[float, list[str]] | None:
        return _cheapest((self.left, self.right))

    def has_near(self) -> bool:
        return True


def _cheapest(children: Iterable[_Node]) -> tuple[float, list[str]] | None:
    """The cover of an AND or a NEAR: its cheapest child's (the first of equal cost)."""
    best = None
    for c in children:
        sub = c.cover()
        if sub is not None and (best is None or sub[0] < best[0]):
            best = sub
    return best


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
                if node is None or not node.positional():
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


def _parse(query: str, plurals: bool) -> tuple[_Node, list[Term]]:
    if len(query) > MAX_QUERY_CHARS:
        raise WatchError(f"query is {len(query)} characters; the limit is {MAX_QUERY_CHARS}")
    parser = _Parser(query, plurals)
    root = parser.parse()
    if root is None:
        raise WatchError(f"query {query!r} has no words to match")
    return root, parser.terms
