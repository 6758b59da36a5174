"""Fast named-entity tagging: gazetteer + capitalised-phrase rules, no model.

A statistical NER costs ~65 ms per article; this costs a few hundred µs. Steps:

1. Split the text into word tokens with offsets (a regex; "U.S." is one token).
2. Mark SHOUTED lines (no lower case: wire headlines): only the gazetteer applies there.
3. Find the gazetteer names with a case-sensitive Aho-Corasick pass, over each capitalised
   run (cached by run text) or, when a name may go past a run, over the whole text.
4. Group capitalised tokens into *runs* ("Chinese Defense Minister Dong Jun", "Bank of
   England"), and classify each run, first rule wins:
   exact gazetteer name > person title cue ("Minister X Y") > organisation head or suffix
   ("Ministry of X", "... Army") > known first name ("Lloyd Austin") > gazetteer names inside
   the run (the rest re-classified) > ALL-CAPS acronym > lower-case cue before it
   ("striker Igor Shkvyrin") > two or three rare capitalised words (a person, by guess).
5. Per document: a lone word that is the surname of a person found earlier or later
   ("Austin" after "Lloyd Austin") counts toward that person, even if the gazetteer says it
   is a city; other lone words take the kind they have elsewhere in the document, or are
   dropped. Sentence-initial common words ("The", "What Happened") never start a name.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from agents.tag.gazetteer import Gazetteer, load_gazetteer
from agents.wordlists import load_lines, load_words
from streams.records import Entity
from streams.words import warm, zipf

__all__ = ["Mention", "EntityTagger"]

_CAPITAL = re.compile(r"[A-Z]")
_LOWER = re.compile(r"[a-z]")
_SENTENCE_END = frozenset("!?:;\n")

# Abbreviations whose trailing period neither ends a sentence nor a name run.
_ABBREV = load_words("agents.tag", "abbreviations")
# Lower-case words allowed inside a run ("Bank of England", "Ludwig van Beethoven").
_CONNECTORS_LISTED = load_lines("agents.tag", "connectors")
_CONNECTORS = frozenset(_CONNECTORS_LISTED)
# Titles before a person's name: "Minister X Y".
_TITLES = load_words("agents.tag", "titles")
# Lower-case words that announce a person's name right after them.
_PERSON_CUES = load_words("agents.tag", "person_cues")
# Last words of an organisation's name: "Tesla Inc", "Red Army".
_ORG_SUFFIX = load_words("agents.tag", "org_suffixes")
# First words of an organisation's name before "of" or "for": "Ministry of Defence".
_ORG_HEADS = load_words("agents.tag", "org_heads")
# Nationality and group adjectives: never a name alone.
_DEMONYMS = load_words("agents.tag", "demonyms")
# Month and weekday names: never a name.
_MONTHS_DAYS = load_words("agents.tag", "months_days")
# ALL-CAPS words that are not organisations.
_ACRONYM_STOP = load_words("agents.tag", "acronym_stop")
# Capitalised words that alone are never a name: skipped before any per-run work.
_SKIP = load_words("agents.tag", "skip_words") | _MONTHS_DAYS
# Words after a name that make it a person's: "Smith said".
_SAID = load_words("agents.tag", "said_words")
_MAX_NAME_TOKENS = 4

# Words after a place that still leave the place as the name: "US Government" is place "US".
_GOVERNMENT = frozenset(["Government", "Administration"])
_ROMAN = re.compile(r"[IVXLC]+")
_RUN_CACHE_MAX = 1 << 17


@dataclass(slots=True)
class Mention:
    """One entity mention: ``kind`` is None while unresolved (a lone capitalised word)."""

    start: int
    end: int
    surface: str
    kind: str | None
    name: str  # canonical name the mention counts toward
    source: str  # "gaz" | "rule" | "guess" | "link"


@lru_cache(maxsize=1 << 17)
def _common(word: str) -> bool:
    """A frequent English word in lower case: a poor name on its own."""
    return zipf(word.lower()) >= 4.3


@lru_cache(maxsize=1 << 17)
def _rare(word: str) -> bool:
    return zipf(word.lower()) < 3.6


def _strip_possessive(word: str) -> str:
    return word[:-2] if word.endswith(("'s", "’s")) else word


@lru_cache(maxsize=1 << 16)
def _acronym_tail(word: str) -> bool:
    """An ALL-CAPS acronym or its plural ("NATO", "CEO", "APIs") that is not a company suffix
    ("PLC"): no person's name ends in one. Roman numerals ("Henry VIII") are not acronyms."""
    word = _strip_possessive(word)
    core = word[:-1] if len(word) >= 3 and word[-1] == "s" else word
    return (
        2 <= len(core) <= 4
        and core.isalpha()
        and core.isupper()
        and word not in _ORG_SUFFIX
        and not _ROMAN.fullmatch(core)
    )


# Abbreviations whose "." belongs to a capitalised word of a run ("Mr." in "Mr. Smith").
_DOTTED = load_lines("agents.tag", "dotted_abbreviations")
# One capitalised word, first match wins: initials ("U.S."), a dotted abbreviation ("Mrs."), an
# initial ("J."), or a word ("O'Neill", "Jean-Luc"). It starts with a plain character class so
# that the regex engine skips ahead to capitals instead of trying a match at every offset; the
# lookbehinds then check which word that capital began (~1.6x faster than a lookahead first).
_CAP = (
    r"[A-ZÀ-ÖØ-Þ](?:(?<=[A-Z])\.(?:[A-Z]\.)+"
    r"|[a-z]++\.(?:" + "|".join(rf"(?<={re.escape(word)}\.)" for word in _DOTTED) + ")"
    r"|(?<=[A-Z])\.|[^\W_]*(?:['’-][^\W_]+)*)"
)
# A run of capitalised words, with spaces, "&" or a connector between them. Found by one
# regex pass so that Python-level work is per run (~1 in 6 words), not per word. Every
# connector may join two words but "y", kept out as it always was ("Madrid y Barcelona" is
# two runs).
_JOIN = (
    r"(?:[ \t]+|[ \t]*&[ \t]*)(?:(?:"
    + "|".join(re.escape(word) for word in _CONNECTORS_LISTED if word != "y")
    + r")[ \t]+)?"
)
_RUN = re.compile(rf"{_CAP}(?:{_JOIN}{_CAP})*")
# What a run goes on with: text after a run's end never starts like this.
_RUN_GOES_ON = re.compile(rf"{_JOIN}[A-ZÀ-ÖØ-Þ]")
_WORD = re.compile(r"(?:[A-Z]\.){2,}|[^\W_]+(?:['’][^\W_]+)*")
_INNER_WORD = re.compile(r"(?<![^\W_])[^\W_]")  # a letter or digit that starts a word
_PREV_WORD = re.compile(r"([^\W_]+)[^\w\n]*$")
# The word before an offset, matched in the reversed text: one anchored match instead of a
# search over a window. Same as ``_PREV_WORD`` (whose ``$`` also matches before a final "\n").
_PREV_WORD_REVERSED = re.compile(r"\n?[^\w\n]*([^\W_]+)")
_CUES_REVERSED = frozenset(cue[::-1] for cue in _PERSON_CUES)
_NEXT_WORD = re.compile(r"[ \t,]*([a-z]+)")

# A mention relative to the start of its run: (start, end, surface, kind, name, source).
_Mention = tuple[int, int, str, str | None, str, str]
# A run's mentions.
_Template = tuple[_Mention, ...]
# What a run's classification asked about its surroundings, in order: (question, answer).
_Context = tuple[tuple[str, bool], ...]
# Gazetteer hits inside a run, relative to its start: (start, end, kind, canonical), in order.
_Hits = tuple[tuple[int, int, str, str], ...]
# Cache key of a run: its text, with the gazetteer hits inside it (relative) if there are any.
_Key = str | tuple[str, _Hits]
# Cache entry: (end of the run's last word, relative; [(context answers, template), ...]).
_Entry = tuple[int, list[tuple[_Context, _Template]]]
# A resolved mention of a scan: (index of its row, kind, name, source).
_Resolved = tuple[int, str, str, str]
_NEVER = 1 << 62  # an offset past any text


def _shouted_lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of the SHOUTED lines: no lower-case a-z, at least four capitals. Line by
    line (one ``[a-z]`` search each) rather than a ``^...$`` multi-line regex scan: ~3x faster."""
    out: list[tuple[int, int]] = []
    start = 0
    for line in text.split("\n"):
        end = start + len(line)
        if line and _LOWER.search(line) is None and len(_CAPITAL.findall(line)) >= 4:
            out.append((start, end))
        start = end + 1
    return out


def _longest_leftmost(found: list[tuple[int, int, str, str]]) -> list[tuple[int, int, str, str]]:
    """Of word-bounded hits ``(start, -end, kind, canonical)``, the leftmost, longest first,
    then the next one after it, and so on: ``(start, end, kind, canonical)``."""
    found.sort()  # by start, longest first; (start, end) pairs are unique
    out = []
    covered_to = -1
    for start, neg_end, kind, canonical in found:
        if start >= covered_to:
            covered_to = -neg_end
            out.append((start, covered_to, kind, canonical))
    return out


def _hits_in(auto: Any, text: str, open_start: bool = False, open_end: bool = False) -> _Hits:
    """Gazetteer hits inside ``text`` (a run) as if the text around it were not letters or
    digits; ``open_start``/``open_end``: a letter or digit touches its first/last character."""
    n = len(text)
    found = []
    for last, (kind, canonical, length) in auto.iter(text):
        start, end = last + 1 - length, last + 1
        if (open_start if start == 0 else text[start - 1].isalnum()) or (
            open_end if end == n else text[end].isalnum()
        ):
            continue
        found.append((start, -end, kind, canonical))
    return tuple(_longest_leftmost(found)) if found else ()


class _Doc:
    """One text and its SHOUTED line ranges; its gazetteer hits by start offset once
    ``find_hits`` has run (only texts that runs alone cannot handle need them)."""

    __slots__ = ("_reversed", "_shouted_starts", "gaz_at", "gaz_starts", "shouted", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.shouted = _shouted_lines(text)
        self._shouted_starts = [a for a, _ in self.shouted]
        self._reversed = ""
        self.gaz_at: dict[int, tuple[int, str, str]] = {}
        self.gaz_starts: list[int] = []

    def is_shouted(self, offset: int) -> bool:
        k = bisect_right(self._shouted_starts, offset) - 1
        return k >= 0 and offset < self.shouted[k][1]

    def find_hits(self, gaz: Gazetteer) -> None:
        """start offset -> (end offset, kind, canonical), word-bounded, longest leftmost."""
        text = self.text
        n = len(text)
        found: list[tuple[int, int, str, str]] = []  # (start, -end, kind, canonical)
        passes = [(gaz.exact, text, False)]
        if self.shouted:
            passes.append((gaz.shouted, text.upper(), True))
        any_shouted = bool(self.shouted)
        for auto, haystack, shouted in passes:
            for last, (kind, canonical, length) in auto.iter(haystack):
                start = last + 1 - length
                if (start > 0 and text[start - 1].isalnum()) or (last + 1 < n and text[last + 1].isalnum()):
                    continue
                if (any_shouted and self.is_shouted(start)) == shouted:
                    found.append((start, -1 - last, kind, canonical))
        hits = _longest_leftmost(found)
        self.gaz_at = {start: (end, kind, canonical) for start, end, kind, canonical in hits}
        self.gaz_starts = list(self.gaz_at)  # ascending

    def initial(self, offset: int) -> bool:
        """A word at ``offset`` starts a sentence (or a line, or follows a colon)."""
        before = self.text[max(0, offset - 12) : offset].rstrip(" \t\"'“‘(")
        if not before:
            return offset < 12
        last = before[-1]
        if last == ".":
            m = _PREV_WORD.search(before[:-1])
            prev = m.group(1) if m else ""
            return prev not in _ABBREV and not (len(prev) == 1 and prev.isupper())
        return last in _SENTENCE_END

    def after_cue(self, offset: int) -> bool:
        """The word before ``offset`` (within 30 characters) announces a person: "striker"."""
        if not self._reversed:
            self._reversed = self.text[::-1]
        n = len(self.text)
        m = _PREV_WORD_REVERSED.match(self._reversed, n - offset, n - max(0, offset - 30))
        return m is not None and m.group(1) in _CUES_REVERSED

    def before_said(self, offset: int) -> bool:
        """The word at ``offset`` (after spaces or a comma) is "said" or the like."""
        m = _NEXT_WORD.match(self.text, offset)
        return m is not None and m.group(1) in _SAID


class _Run:
    """The words of one capitalised run, with offsets and the gazetteer hits among them.

    Questions about the run's surroundings are recorded in ``asked``: "i" it starts a sentence
    (``initial`` at its first word), "c" a cue word is before it (``after_cue``), "s" a "said"
    word is after it (``before_said`` at its last word). The classification is a function of
    the run text, its gazetteer hits and those answers only, so it can be cached.
    """

    __slots__ = ("asked", "doc", "ends", "hits", "start", "starts", "words")

    def __init__(self, doc: _Doc, start: int, end: int, hits: _Hits) -> None:
        """``hits``: the gazetteer hits that start inside the run, relative to its start."""
        self.doc = doc
        self.start = start
        self.asked: dict[str, bool] = {}
        self.hits: dict[int, tuple[int, str, str]] = {}
        text = doc.text
        run_text = text[start:end]
        if run_text.isalpha():  # one plain word: no need for the word regex
            self.words, self.starts, self.ends = [run_text], [start], [end]
            if hits and hits[0][0] == 0 and hits[0][1] == end - start:
                self.hits[0] = (1, hits[0][2], hits[0][3])
            return
        # The words' offsets by str.find, cheaper than match objects: only characters that are
        # not letters or digits lie between two words, and each word starts with one.
        words = self.words = _WORD.findall(run_text)
        starts: list[int] = []
        ends: list[int] = []
        find = text.find
        pos = start
        for word in words:
            pos = find(word, pos)
            starts.append(pos)
            pos += len(word)
            ends.append(pos)
        self.starts, self.ends = starts, ends
        if not hits:
            return
        hit_at = {start + rs: (start + re_, kind, canonical) for rs, re_, kind, canonical in hits}
        for k, s in enumerate(starts):
            hit = hit_at.get(s)
            if hit is None:
                continue
            for m in range(k, len(ends)):
                e = ends[m]
                if hit[0] == e or (hit[0] == e - 2 and words[m].endswith(("'s", "’s"))):
                    self.hits[k] = (m + 1, hit[1], hit[2])
                    break

    # The questions about the run's own surroundings are recorded; the others (a word inside
    # the run) are fixed by the run text. Written out per question: these are hot.
    def initial(self, i: int) -> bool:
        if i:
            return self.doc.initial(self.starts[i])
        answer = self.asked.get("i")
        if answer is None:
            answer = self.asked["i"] = self.doc.initial(self.starts[0])
        return answer

    def after_cue(self, i: int) -> bool:
        if i:
            return self.doc.after_cue(self.starts[i])
        answer = self.asked.get("c")
        if answer is None:
            answer = self.asked["c"] = self.doc.after_cue(self.starts[0])
        return answer

    def before_said(self, j: int) -> bool:
        """The word after ``words[j - 1]`` is "said" or the like."""
        if j != len(self.words):
            return self.doc.before_said(self.ends[j - 1])
        answer = self.asked.get("s")
        if answer is None:
            answer = self.asked["s"] = self.doc.before_said(self.ends[-1])
        return answer

    def surface(self, i: int, j: int) -> str:
        text = self.doc.text[self.starts[i] : self.ends[j - 1]]
        return _strip_possessive(" ".join(text.split()))

    def mention(self, i: int, j: int, kind: str | None, name: str, source: str) -> _Mention:
        """Words ``i:j`` as a mention, its offsets relative to the run's start."""
        start = self.start
        return (self.starts[i] - start, self.ends[j - 1] - start, self.surface(i, j), kind, name, source)


class EntityTagger:
    """Finds person / org / place mentions; build once, call many times.

    Each capitalised run's classification is cached by (run text, gazetteer hits inside it,
    the few answers about its surroundings it needed): names repeat across a news stream, so
    most runs cost a dict lookup.
    """

    def __init__(self, gazetteer: Gazetteer | None = None) -> None:
        self.gaz = gazetteer or load_gazetteer()
        warm()
        self._runs: dict[_Key, _Entry] = {}
        # Gazetteer hits by run text, and the texts that, right after the run, would make a
        # name that starts in the run and goes on past it (see ``_scan``). By (run text, letter
        # before, letter after) for the hits of runs that start or end inside a word.
        self._run_hits: dict[str, tuple[_Hits, tuple[str, ...]]] = {}
        self._edge_hits: dict[tuple[str, bool, bool], _Hits] = {}
        names = self.gaz.names
        # Names that no run can start ("al-Qaeda", "eBay"): looked for in the whole text.
        self._unrun_names = [name for name in names if not _RUN.match(name)]
        # Where a name can go on past the end of a run: the name's beginning -> what follows
        # ("Trinidad" -> " and Tobago", "Town-U" -> ".S."). A run ends before a character
        # that is not a letter or digit, or after a "."; never before what would extend it.
        tails: dict[str, list[str]] = {}
        for name in names:
            for k in range(1, len(name)):
                if (not name[k].isalnum() or name[k - 1] == ".") and not _RUN_GOES_ON.match(name, k):
                    tails.setdefault(name[:k], []).append(name[k:])
        self._tails = {head: tuple(rest) for head, rest in tails.items()}
        self._skip_tails = {word: self._tails[word] for word in _SKIP if word in self._tails}

    # ----------------------------------------------------------------- public API
    def mentions(self, text: str) -> list[Mention]:
        """All resolved mentions in ``text``, in order of appearance."""
        starts, rows = self._scan(text)
        out = []
        for i, kind, name, source in _resolve(rows):
            rs, re_, surface = rows[i][:3]
            out.append(Mention(starts[i] + rs, starts[i] + re_, surface, kind, name, source))
        return out

    def entities(self, title: str, text: str) -> list[Entity]:
        """Entities of an article, the title counted only for names found by the gazetteer or
        already found in the body (headline case makes every word look like a name)."""
        found = [(name, kind) for _, kind, name, _ in _resolve(self._scan(text)[1])]
        if title:
            known = set(found)
            found[:0] = [
                (name, kind)
                for _, kind, name, source in _resolve(self._scan(title)[1])
                if source == "gaz" or (name, kind) in known
            ]
        return _aggregate(found)

    # ----------------------------------------------------------------- scanning
    def _scan(self, text: str) -> tuple[list[int], list[_Mention]]:
        """Unresolved mentions of ``text`` in order of appearance: each one's run start, and
        its row (offsets relative to that start).

        Only gazetteer hits that start inside a run matter, and most lie inside it ("Bank of
        England"), so most texts get them from their runs, cached by run text, instead of an
        Aho-Corasick pass over the whole text. Texts with SHOUTED lines, with a name that no
        run starts, or with a name that starts in a run and goes on past it ("Trinidad and
        Tobago") take that pass; both ways give the same hits.
        """
        if not text:
            return [], []
        doc = _Doc(text)
        if not doc.shouted and not any(name in text for name in self._unrun_names):
            found = self._scan_runs(doc, True)
            if found is not None:
                return found
        doc.find_hits(self.gaz)
        found = self._scan_runs(doc, False)
        assert found is not None
        return found

    def _scan_runs(self, doc: _Doc, by_run: bool) -> tuple[list[int], list[_Mention]] | None:
        """``_scan`` with the gazetteer hits of each run from the run (``by_run``; None when a
        name goes on past a run) or from ``doc.find_hits``."""
        text = doc.text
        n = len(text)
        starts: list[int] = []
        rows: list[_Mention] = []
        cache_get = self._runs.get
        run_hits_get = self._run_hits.get
        gaz_at, gaz_starts = doc.gaz_at, doc.gaz_starts
        n_gaz = len(gaz_starts)
        g = 0  # next gazetteer hit not before the current run (runs come in order)
        next_gaz = gaz_starts[0] if n_gaz else _NEVER
        shouted = doc.shouted
        skip_tails = self._skip_tails if by_run else {}
        for m in _RUN.finditer(text):
            run_text = m.group()
            if run_text in _SKIP:
                if run_text in skip_tails and _goes_on(text, m.end(), skip_tails[run_text]):
                    return None
                continue
            start = m.start()
            if shouted and doc.is_shouted(start):
                continue
            end = start + len(run_text)
            hits: _Hits = ()
            if by_run:
                known = run_hits_get(run_text)
                if known is None:
                    known = self._learn_run_hits(run_text)
                hits, tails = known
                if tails and _goes_on(text, end, tails):
                    return None  # a name starts in the run and goes on past it
                if hits and (
                    (hits[0][0] == 0 and start and text[start - 1].isalnum())
                    or (hits[-1][1] == end - start and end < n and text[end].isalnum())
                ):  # the run starts or ends inside a word ("iPhone"): not a boundary there
                    hits = self._hits_at_edges(run_text, start, end, text)
            elif next_gaz < end:
                while next_gaz < start:
                    g += 1
                    next_gaz = gaz_starts[g] if g < n_gaz else _NEVER
                if next_gaz < end:  # hits inside the run
                    rel = []
                    while next_gaz < end:
                        e, kind, canonical = gaz_at[next_gaz]
                        rel.append((next_gaz - start, e - start, kind, canonical))
                        g += 1
                        next_gaz = gaz_starts[g] if g < n_gaz else _NEVER
                    hits = tuple(rel)
            key: _Key = (run_text, hits) if hits else run_text
            entry = cache_get(key)
            if entry is None:
                template = self._classify_run(doc, start, end, key, None)
            else:
                variants = entry[1]
                asked, template = variants[0]
                if asked or len(variants) > 1:
                    picked = _pick(entry, doc, start)
                    if picked is None:
                        picked = self._classify_run(doc, start, end, key, entry)
                    template = picked
            if template:
                rows += template
                starts += [start] * len(template)
        if shouted:
            for start, (end, kind, canonical) in gaz_at.items():
                if doc.is_shouted(start):
                    starts.append(start)
                    rows.append((0, end - start, _strip_possessive(text[start:end]), kind, canonical, "gaz"))
            at = [s + row[0] for s, row in zip(starts, rows, strict=True)]
            order = sorted(range(len(rows)), key=at.__getitem__)  # stable, as the rows came
            starts = [starts[i] for i in order]
            rows = [rows[i] for i in order]
        return starts, rows

    def _learn_run_hits(self, run_text: str) -> tuple[_Hits, tuple[str, ...]]:
        # A name can start where a word starts: from each, the ways a name would go on.
        heads = self._tails
        tails = heads.get(run_text, ())
        for m in _INNER_WORD.finditer(run_text, 1):
            tails += heads.get(run_text[m.start() :], ())
        known = (_hits_in(self.gaz.exact, run_text), tails)
        if len(self._run_hits) >= _RUN_CACHE_MAX:
            self._run_hits.clear()
        self._run_hits[run_text] = known
        return known

    def _hits_at_edges(self, run_text: str, start: int, end: int, text: str) -> _Hits:
        key = (run_text, start > 0 and text[start - 1].isalnum(), end < len(text) and text[end].isalnum())
        hits = self._edge_hits.get(key)
        if hits is None:
            if len(self._edge_hits) >= _RUN_CACHE_MAX:
                self._edge_hits.clear()
            hits = self._edge_hits[key] = _hits_in(self.gaz.exact, run_text, key[1], key[2])
        return hits

    def _classify_run(self, doc: _Doc, start: int, end: int, key: _Key, entry: _Entry | None) -> _Template:
        """Classify a run not in the cache (or not with this context), and cache it."""
        run = _Run(doc, start, end, key[1] if isinstance(key, tuple) else ())
        if not run.words:
            return ()
        out: list[_Mention] = []
        self._classify(run, 0, len(run.words), out)
        template = tuple(out)
        if entry is None:
            cache = self._runs
            if len(cache) >= _RUN_CACHE_MAX:
                cache.clear()
            entry = cache[key] = (run.ends[-1] - start, [])
        entry[1].append((tuple(run.asked.items()), template))
        return template

    # ----------------------------------------------------------------- classification
    def _classify(self, run: _Run, i: int, j: int, out: list[_Mention]) -> None:
        words = run.words
        if j - i == 1:  # the common case: one word
            hit = run.hits.get(i)
            if hit is not None and hit[0] == j:
                out.append(run.mention(i, j, hit[1], hit[2], "gaz"))
            elif words[i] not in _CONNECTORS:
                self._lone_word(run, i, out)
            return
        i = self._trim_front(run, i, j)
        while j > i and words[j - 1] in _CONNECTORS:
            j -= 1
        if i >= j:
            return
        hit = run.hits.get(i)
        if hit is not None and hit[0] == j:
            out.append(run.mention(i, j, hit[1], hit[2], "gaz"))
            return
        if j - i == 1:
            self._classify(run, i, j, out)
            return
        last = _strip_possessive(words[j - 1])  # "Tesla Inc's"
        if last in _GOVERNMENT and hit is not None and hit[0] == j - 1 and hit[1] == "place":
            out.append(run.mention(i, j - 1, hit[1], hit[2], "gaz"))  # "US Government": "US"
            return
        if (
            _acronym_tail(last)
            and not words[j - 2].isupper()  # "IMC TBN": acronyms all along, left as they were
            and run.doc.text[run.starts[j - 1] - 1].isspace()  # not "YEAR-AGO"
        ):  # "Benzinga APIs", "John Smith CEO": a name, then an acronym that is not part of it
            self._classify(run, i, j - 1, out)
            self._classify(run, j - 1, j, out)
            return
        if self._title_rule(run, i, j, out):
            return
        if last in _ORG_SUFFIX or (j - i >= 3 and words[i] in _ORG_HEADS and words[i + 1] in ("of", "for")):
            out.append(run.mention(i, j, "org", run.surface(i, j), "rule"))
            return
        if words[i] in self.gaz.first_names:
            k = min(j, i + 3)
            if all(w not in _ORG_SUFFIX and w not in _CONNECTORS for w in words[i + 1 : k]):
                out.append(run.mention(i, k, "person", run.surface(i, k), "rule"))
                if k < j:
                    self._classify(run, k, j, out)
                return
        if self._gazetteer_inside(run, i, j, out):
            return
        self._unknown(run, i, j, out)

    def _trim_front(self, run: _Run, i: int, j: int) -> int:
        """Drop a leading "The" and a sentence-initial common word ("In", "What") that is not
        itself the start of a name."""
        words = run.words
        while i < j - 1:
            word = words[i]
            if i in run.hits or word in self.gaz.first_names or word in _TITLES:
                return i
            if word in ("The", "A", "An") or (i == 0 and _common(word) and run.initial(0)):
                i += 1
                continue
            return i
        return i

    def _title_rule(self, run: _Run, i: int, j: int, out: list[_Mention]) -> bool:
        """ "Chinese Defense Minister Dong Jun" -> person "Dong Jun"."""
        words = run.words
        k = -1
        for t in range(i, j):
            if words[t] in _TITLES:
                k = t
        if k < 0:
            return False
        name = k + 1
        if name + 1 < j and words[name] in ("of", "for"):
            name += 2  # "Secretary of State Antony Blinken"
            # "Minister for National Defense Dong Jun": skip common words left of the name.
            first_names = self.gaz.first_names
            while j - name > 1 and words[name] not in first_names and _common(words[name]):
                name += 1
        if not 1 <= j - name <= _MAX_NAME_TOKENS or _strip_possessive(words[j - 1]) in _ORG_SUFFIX:
            return False
        if words[name] in _TITLES or (j - name == 1 and run.hits.get(name, (0,))[0] == j):
            return False
        if k > i:
            self._classify(run, i, k, out)
        out.append(run.mention(name, j, "person", run.surface(name, j), "rule"))
        return True

    def _gazetteer_inside(self, run: _Run, i: int, j: int, out: list[_Mention]) -> bool:
        """Emit gazetteer names inside the run; classify what is between them."""
        starts = [t for t in range(i, j) if t in run.hits and run.hits[t][0] <= j]
        if not starts:
            return False
        cursor = i
        for t in starts:
            if t < cursor:
                continue
            if t > cursor:
                self._classify(run, cursor, t, out)
            end, kind, canonical = run.hits[t]
            out.append(run.mention(t, end, kind, canonical, "gaz"))
            cursor = end
        if cursor < j:
            self._classify(run, cursor, j, out)
        return True

    def _unknown(self, run: _Run, i: int, j: int, out: list[_Mention]) -> None:
        words = run.words
        while i < j and words[i] in _DEMONYMS:
            i += 1
        if i >= j:
            return
        months = [t for t in range(i, j) if words[t] in _MONTHS_DAYS]
        if months:
            cursor = i
            for t in [*months, j]:
                if t > cursor:
                    self._unknown(run, cursor, t, out)
                cursor = t + 1
            return
        if j - i == 1:
            self._lone_word(run, i, out)
            return
        name_like = all(w.isalpha() and w[0].isupper() and not w.isupper() for w in words[i:j])
        if not name_like or j - i > 3:
            return
        if _rare(words[j - 1]) or run.after_cue(i) or run.before_said(j):
            out.append(run.mention(i, j, "person", run.surface(i, j), "guess"))

    def _lone_word(self, run: _Run, i: int, out: list[_Mention]) -> None:
        word = _strip_possessive(run.words[i])
        if word in _MONTHS_DAYS or word in _DEMONYMS or not word[0].isupper():
            return
        if word.isupper() and 2 <= len(word) <= 6 and word.isalpha() and word not in _ACRONYM_STOP:
            out.append(run.mention(i, i + 1, "org", word, "rule"))
            return
        if _common(word) and run.initial(i):
            return
        kind = "person" if run.after_cue(i) else None
        out.append(run.mention(i, i + 1, kind, word, "guess" if kind else "lone"))


def _goes_on(text: str, end: int, tails: tuple[str, ...]) -> bool:
    return any(text.startswith(tail, end) for tail in tails)


def _pick(entry: _Entry, doc: _Doc, start: int) -> _Template | None:
    """The cached mentions of a run whose recorded context answers hold here, if any."""
    last_end, variants = entry
    for asked, template in variants:
        for question, answer in asked:  # the questions of ``_Run``
            if question == "i":
                got = doc.initial(start)
            elif question == "c":
                got = doc.after_cue(start)
            else:
                got = doc.before_said(start + last_end)
            if got != answer:
                break
        else:
            return template
    return None


def _resolve(rows: list[_Mention]) -> list[_Resolved]:
    """Link lone words to the document's people, then to names of known kind; drop the rest.
    Rows are ``(start, end, surface, kind, name, source)``; the kept ones come back as
    ``(index, kind, name, source)``."""
    surname: dict[str, str] = {}
    kind_of: dict[str, tuple[str, str]] = {}
    for _, _, surface, kind, name, _ in rows:
        if kind is None:
            continue
        kind_of[surface] = (kind, name)
        if kind == "person" and " " in name:
            parts = name.split()
            surname.setdefault(parts[-1], name)
            if len(parts) == 3:  # "George W. Bush" / "Lai Ching Te": the last two too
                surname.setdefault(" ".join(parts[1:]), name)
    out: list[_Resolved] = []
    append = out.append
    for i, (_, _, surface, kind, name, source) in enumerate(rows):
        if " " not in surface and surface in surname:
            if kind is None or source == "gaz":
                append((i, "person", surname[surface], "link"))
                continue
            if kind == "person" and source == "guess":
                name = surname[surface]
        elif kind is None:
            known = kind_of.get(surface)
            if known is None:
                continue
            append((i, known[0], known[1], "link"))
            continue
        append((i, kind, name, source))
    return out


def _aggregate(found: Iterable[tuple[str, str]]) -> list[Entity]:
    """Count (name, kind) pairs; order by count desc, then first appearance."""
    counts: dict[tuple[str, str], int] = {}
    for key in found:
        counts[key] = counts.get(key, 0) + 1
    ranked = sorted(counts.items(), key=_BY_COUNT)  # stable: first appearance breaks ties
    return [Entity(name=name, kind=kind, count=n) for (name, kind), n in ranked]


def _BY_COUNT(item: tuple[tuple[str, str], int]) -> int:
    return -item[1]

