"""The gazetteer of the tag stage, loaded once from ``agents/tag/data`` (``agents.wordlists``).

* ``gazetteer.txt``: hand-authored places (aliases, regions, seas), organisations.
* ``places_geonames.txt``: countries, US states, capitals, cities of 200k+ (GeoNames).
* ``first_names.txt``: common first names (US census), plus the hand-authored
  ``first_names_extra.txt`` (international names common in news).

Names go into two pyahocorasick automata over the original text: one case-sensitive (normal
prose) and one upper-cased (for SHOUTED headline lines), each value ``(kind, canonical, len)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import ahocorasick  # type: ignore[import-untyped]

from agents.wordlists import load_lines, load_words

__all__ = ["Gazetteer", "load_gazetteer"]


@dataclass(frozen=True, slots=True)
class Gazetteer:
    exact: ahocorasick.Automaton  # case-sensitive names -> (kind, canonical, length)
    shouted: ahocorasick.Automaton  # upper-cased names, for lines without lower case
    first_names: frozenset[str]
    names: dict[str, tuple[str, str]]  # surface -> (kind, canonical)


def _read_gazetteer() -> dict[str, tuple[str, str]]:
    names: dict[str, tuple[str, str]] = {}
    for place in load_lines("agents.tag", "places_geonames"):
        names[place] = ("place", place)
    kind = "place"
    for line in load_lines("agents.tag", "gazetteer"):
        if line.startswith("[") and line.endswith("]"):
            kind = line[1:-1]
            continue
        surface, _, canonical = (part.strip() for part in line.partition("="))
        names[surface] = (kind, canonical or surface)
        if "'" in surface:  # typographic apostrophe too: "People’s Liberation Army"
            names[surface.replace("'", "’")] = (kind, canonical or surface)
    return names


def _automaton(entries: dict[str, tuple[str, str]]) -> ahocorasick.Automaton:
    auto = ahocorasick.Automaton()
    for surface, (kind, canonical) in entries.items():
        auto.add_word(surface, (kind, canonical, len(surface)))
    auto.make_automaton()
    return auto


def _shoutable(surface: str) -> bool:
    # "US", "WHO", "AP" in a shouted headline are ordinary words: only longer names match.
    return len(surface) > 3 or not surface.isupper()


@cache
def load_gazetteer() -> Gazetteer:
    """Build the automata once per process (≈0.1 s)."""
    names = _read_gazetteer()
    shouted = {s.upper(): v for s, v in names.items() if _shoutable(s)}
    first = load_words("agents.tag", "first_names") | load_words("agents.tag", "first_names_extra")
    return Gazetteer(_automaton(names), _automaton(shouted), first, names)
