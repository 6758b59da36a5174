"""Planning: what each query needs of an article, and the program the compiled kernel runs.

Each watch has a small set of *required keys* such that any article it matches contains at
least one of them (``_Node.cover``): for OR every branch's, for AND/NEAR the branch that looks
rarest (``keys.py`` guesses how often each key occurs); NOT never counts, so a query without a
cover is refused. Watches with the same query share one parsed query (``_Query``, compiled once,
cached by query text) and one evaluation. A query whose every term occurs exactly where one of
its keys does (nearly all: not a plural past ``MAX_KEY_VARIANTS`` forms or a mid-phrase
wildcard) also gets a *plan*: a small postfix program over ``OPCODES``, AND / OR / NOT over its
terms and NEAR over the places the scan recorded, which the kernel runs for it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache

from agents.watch.keys import META_FIELDS
from agents.watch.query import And, Near, Not, Or, Term, _err, _Node, _parse
from streams.records import Watch

__all__ = ["OPCODES", "CompiledWatch", "check_opcodes", "compile_watch", "parse_query",
           "parse_terms"]

MAX_DECIDED_TERMS = 40  # a key-decided query's terms are bits of an int64, its index the rest

# The compiled kernel's instruction set, and the one table of it: a truth program of (op, arg)
# pairs; a NEAR runs the span program of the pairs that follow it. kernel.pyx repeats the
# numbers as C constants (its inner loop cannot read a dict) and exports them as its own
# OPCODES, which match.py hands to ``check_opcodes`` when it loads the kernel.
OPCODES: dict[str, int] = {
    "TERM": 1,  # arg: term index
    "AND": 2,  # arg: operand count
    "OR": 3,  # arg: operand count
    "NOT": 4,
    "NEAR": 5,  # arg: how many span pairs follow
    "SP_TERM": 6,  # arg: term index
    "SP_OR": 7,  # arg: operand count
    "SP_NEAR": 8,  # arg: n of NEAR/n
}
OP_TERM, OP_AND, OP_OR, OP_NOT, OP_NEAR = (OPCODES[op] for op in ("TERM", "AND", "OR", "NOT", "NEAR"))
SP_TERM, SP_OR, SP_NEAR = (OPCODES[op] for op in ("SP_TERM", "SP_OR", "SP_NEAR"))


def check_opcodes(kernel_opcodes: object) -> None:
    """Refuse a compiled kernel whose opcodes are not ``OPCODES`` (one side edited, or a build
    older than the table): it would run every program wrongly rather than fail."""
    if kernel_opcodes != OPCODES:
        raise RuntimeError(
            f"the compiled watch kernel's opcodes ({kernel_opcodes!r}) are not "
            f"agents.watch.plan.OPCODES ({OPCODES!r}): make agents/watch/kernel.pyx agree, "
            "then rebuild it (python setup.py build_ext --inplace, or pip install -e .)")


def _checked(query: str, plurals: bool) -> tuple[_Node, list[Term], list[str]]:
    root, terms = _parse(query, plurals)
    cover = root.cover()
    if cover is None:
        blame = root.uncovered()
        raise _err(blame.pos, "this can match an article containing none of the query's "
                   "terms (a bare NOT); AND it with a positive term")
    return root, terms, list(dict.fromkeys(cover[1]))


@dataclass(slots=True, eq=False)
class _Query:
    """A parsed query, shared by every watch that has it and evaluated once per article."""

    source: tuple[str, bool]  # (query, plurals): watches with equal sources are one query
    root: _Node
    terms: list[Term]
    keys: list[str]
    proven: bool  # see _Node.proves: a candidate is a hit without evaluating the tree
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
    simple = not root.has_near()
    decided = simple and len(terms) <= MAX_DECIDED_TERMS and all(t.proven for t in terms)
    slots = tuple((key, 1 << bit) for bit, t in enumerate(terms) for key in t.keys) if decided else ()
    return _Query((query, plurals), root, terms, keys, root.proves(), simple, _static_terms(root),
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
    """The query as the compiled kernel runs it (``kernel.pyx``), or None when some term is
    not characterised by its keys."""
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


def _static_terms(root: _Node) -> list[str] | None:
    """The matched terms of a query without OR or NEAR: the same whenever it matches (its
    positive terms, then its meta terms); None for other queries."""
    terms: list[str] = []
    meta: list[str] = []
    return list(dict.fromkeys(terms + meta)) if root.static_terms(terms, meta) else None


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
