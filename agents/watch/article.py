"""One article as the Python matcher reads it: its folded fields, where each term occurs,
which meta terms hold, and the evidence of a match (``Match`` records with offsets and
snippets), each worked out once and shared by every query that asks (``_Ctx``).

The compiled kernel does its own scan; Python reads an article this way for the queries the
kernel leaves to it, for the pure-Python matcher, and for ``Evidence`` (places and snippets are
made only for the alerts that are sent).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from agents.watch.keys import (
    _JOIN,
    EXACT,
    META_FIELDS,
    PLURAL,
    PREFIX,
    TEXT_FIELDS,
    _split_odd,
    _tokens,
    singular,
)
from agents.watch.query import Term, _Node
from streams.records import Article, Match
from streams.text import token_spans

if TYPE_CHECKING:
    from agents.watch.plan import _Query

MAX_MATCHES_PER_WATCH = 10
SNIPPET_RADIUS = 80

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
