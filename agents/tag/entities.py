"""Named entities of an article: a learned sequence tagger (agents.tag.ner), then per
document canonical names and counts.

1. The title and the body are tagged as one document, the title its first line, so what
   the body says about a word ("Apple" capitalised mid-sentence) informs a SHOUTED or Title
   Case headline. The model tags person, organisation, place and "misc" names (nationalities,
   events); misc ones are dropped.
2. Each name is cut to its words ("‘Taiwan Strait's" -> "Taiwan Strait"); a gazetteer alias
   takes its canonical name ("U.S." -> "United States") when the kinds agree, and a country's
   alias is the country whatever the model said ("US" in "criticized the US").
3. A name from a SHOUTED line takes the form the document writes it in elsewhere, else the
   gazetteer's, else Title Case ("CHINA" -> "China"; short ones such as "NATO" stay).
4. Per document, a lone word that is the surname of a person named in full ("Austin" after
   "Lloyd Austin") counts toward that person, whatever kind the model gave it; a cashtag or
   an exchange ticker ("$TSLA", "NYSE: F") is not a name.

A wrong guess is the model's: tests/unit/test_tag.py and tests/unit/test_ner.py show what it
gets right on real articles, bench/train_entities.py how it was trained and scored.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from dataclasses import dataclass

from agents.tag.gazetteer import load_gazetteer
from agents.tag.ner.model import NerModel, load_model
from streams.records import Entity
from streams.words import warm

__all__ = ["Mention", "EntityTagger"]

_KINDS = {"PER": "person", "ORG": "org", "LOC": "place"}
# Tokens after which an ALL-CAPS word is a ticker symbol, not a name.
_TICKER_BEFORE = frozenset(["NYSE", "NASDAQ", "Nasdaq", "LSE", "TSX", "ASX", "AMEX", "OTC", "HKEX"])
_POSSESSIVE = frozenset(["'s", "’s", "'S", "’S"])
_ALNUM = re.compile(r"[^\W_]")
_LOWER = re.compile(r"[^\W\d_A-ZÀ-ÖØ-Þ]")  # roughly: a letter that is not upper case
# (start, end, surface, kind, canonical name, source): a Mention's fields.
_Found = tuple[int, int, str, str, str, str]


@dataclass(slots=True)
class Mention:
    """One entity mention: ``name`` is the canonical name it counts toward."""

    start: int
    end: int
    surface: str
    kind: str
    name: str
    source: str  # "model" | "link" (a surname counted toward a full name)


def _ticker(word: str, before: str) -> bool:
    """``word`` is a ticker symbol: "$TSLA", "(NYSE: F)", "NASDAQ:AAPL" (``before``: the text
    before it on its line)."""
    if not (word.isupper() and word.isalpha() and len(word) <= 5):
        return False
    before = before.rstrip()
    if before.endswith(":"):
        before = before[:-1].rstrip()
    return before.endswith("$") or before.rpartition(" ")[2].lstrip("(") in _TICKER_BEFORE


class EntityTagger:
    """Finds person / org / place mentions; build once per process, call many times."""

    def __init__(self, model: NerModel | None = None) -> None:
        warm()  # word frequencies: new words look theirs up
        self.model = model or load_model()
        self.canonical = load_gazetteer().names
        # Gazetteer names by their SHOUTED form, but for short ALL-CAPS ones ("US", "WHO"),
        # which a shouted line may use as words.
        self.shouted_names = {
            surface.upper(): canonical
            for surface, (_, canonical) in self.canonical.items()
            if len(surface) > 3 or not surface.isupper()
        }
        self.kinds = [_KINDS.get(t) for t in self.model.types]

    def mentions(self, text: str) -> list[Mention]:
        """The mentions of ``text`` in order, surnames linked to full names."""
        return [Mention(*found) for found in self._found(text)]

    def entities(self, title: str, text: str) -> list[Entity]:
        """Entities of an article (title and body), by count then first appearance."""
        doc = f"{title}\n{text}" if title and text else title or text
        return _aggregate((found[4], found[3]) for found in self._found(doc))

    def _found(self, text: str) -> list[_Found]:
        starts, ends, spans = self.model.tag(text)
        if not spans:
            return []
        starts, ends = starts.tolist(), ends.tolist()
        kinds = self.kinds
        canonical = self.canonical
        out: list[_Found] = []
        for first, end, t in spans:
            kind = kinds[t]
            if kind is None:
                continue
            # never a quote, a bracket or a possessive at either end: "‘Taiwan", "Taiwan's"
            while end > first and not _ALNUM.search(text, starts[end - 1], ends[end - 1]):
                end -= 1
            while end > first and text[starts[end - 1] : ends[end - 1]] in _POSSESSIVE:
                end -= 1
            while first < end and not _ALNUM.search(text, starts[first], ends[first]):
                first += 1
            if end == first:
                continue
            a, b = starts[first], ends[end - 1]
            surface = text[a:b]
            if end - first > 1:
                surface = " ".join(surface.split())
            elif _ticker(surface, text[max(0, a - 12) : a]):
                continue
            known = canonical.get(surface)
            if known is not None and known[0] == kind:
                name = known[1]
            elif known is not None and known[0] == "place" and known[1] != surface:
                kind, name = "place", known[1]  # a country's alias ("US") is the country
            else:
                name = surface.replace("’", "'")
            out.append((a, b, surface, kind, name, "model"))
        return _link_surnames(self._unshout(text, out))

    def _unshout(self, text: str, found: list[_Found]) -> list[_Found]:
        """Names from SHOUTED lines as the document writes them elsewhere ("CHINA" ->
        "China"), else as the gazetteer does, else in Title Case; short ones with no such
        form stay as they are ("NATO")."""
        shouted = [k for k, f in enumerate(found) if f[2].isupper() and _shouted_line(text, f[0], f[1])]
        if not shouted:
            return found
        written = {f[2].upper(): (f[3], f[4]) for f in found if not f[2].isupper()}
        for k in shouted:
            a, b, surface, kind, name, source = found[k]
            if surface in written:
                kind, name = written[surface]
            elif surface in self.shouted_names:
                name = self.shouted_names[surface]
            elif len(surface) > 4 or " " in surface:
                name = string.capwords(surface)
            found[k] = (a, b, surface, kind, name, source)
        return found


def _shouted_line(text: str, start: int, end: int) -> bool:
    """The line around ``start:end`` has no lower-case letter."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    return _LOWER.search(text, line_start, line_end if line_end >= 0 else len(text)) is None


def _link_surnames(found: list[_Found]) -> list[_Found]:
    """A one-word mention that ends a person's full name in the document counts toward it
    ("Austin" after "Lloyd Austin"), whatever its kind; one tagged a person that starts a
    two-word name does too ("Dong" after "Dong Jun": the family name first)."""
    last: dict[str, str] = {}
    first: dict[str, str] = {}
    for _, _, _, kind, name, _ in found:
        if kind == "person" and " " in name:
            parts = name.split()
            last.setdefault(parts[-1], name)
            if len(parts) == 3:  # "George W. Bush", "Lai Ching Te": the last two words too
                last.setdefault(" ".join(parts[1:]), name)
            if len(parts) == 2:
                first.setdefault(parts[0], name)
    if not last:
        return found
    for k, (a, b, surface, kind, name, _) in enumerate(found):
        if " " in name:
            continue
        key = name.capitalize() if name.isupper() else name  # "LAI" in a SHOUTED headline
        full = last.get(key) or (first.get(key) if kind == "person" else None)
        if full is not None and full != name:
            found[k] = (a, b, surface, "person", full, "link")
    return found


def _aggregate(found: Iterable[tuple[str, str]]) -> list[Entity]:
    """Count (name, kind) pairs; order by count desc, then first appearance."""
    counts: dict[tuple[str, str], int] = {}
    for key in found:
        counts[key] = counts.get(key, 0) + 1
    ranked = sorted(counts.items(), key=_by_count)  # stable: first appearance breaks ties
    return [Entity(name=name, kind=kind, count=n) for (name, kind), n in ranked]


def _by_count(item: tuple[tuple[str, str], int]) -> int:
    return -item[1]
