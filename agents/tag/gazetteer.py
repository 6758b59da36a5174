"""Word lists of the tag stage, loaded once from ``agents/tag/data``.

* ``gazetteer.txt``: hand-authored places (aliases, regions, seas), organisations.
* ``places_geonames.txt``: countries, US states, capitals, cities of 200k+ (GeoNames).
* ``first_names.txt``: common first names (US census) plus the hand-authored ones below.

Names go into two pyahocorasick automata over the original text: one case-sensitive (normal
prose) and one upper-cased (for SHOUTED headline lines), each value ``(kind, canonical, len)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import ahocorasick  # type: ignore[import-untyped]

__all__ = ["Gazetteer", "load_gazetteer"]

DATA = Path(__file__).resolve().parent / "data"

# International given names common in news that the US census list lacks.
_EXTRA_FIRST_NAMES = [
    "Xi",
    "Li",
    "Wang",
    "Zhang",
    "Liu",
    "Chen",
    "Yang",
    "Zhao",
    "Huang",
    "Zhou",
    "Wu",
    "Hu",
    "Guo",
    "Lin",
    "Jun",
    "Wei",
    "Ming",
    "Hui",
    "Jian",
    "Yi",
    "Vladimir",
    "Sergei",
    "Sergey",
    "Dmitry",
    "Dmitri",
    "Alexei",
    "Alexey",
    "Andrei",
    "Mikhail",
    "Nikolai",
    "Yuri",
    "Igor",
    "Oleg",
    "Boris",
    "Viktor",
    "Volodymyr",
    "Olena",
    "Yulia",
    "Petro",
    "Ivan",
    "Pavel",
    "Anatoly",
    "Gennady",
    "Vitaly",
    "Natalia",
    "Svetlana",
    "Olga",
    "Mohammed",
    "Muhammad",
    "Mohammad",
    "Mohamed",
    "Ahmed",
    "Ahmad",
    "Ali",
    "Hassan",
    "Hussein",
    "Omar",
    "Abdul",
    "Abdullah",
    "Khalid",
    "Ibrahim",
    "Yusuf",
    "Mustafa",
    "Mahmoud",
    "Recep",
    "Benjamin",
    "Yair",
    "Naftali",
    "Ehud",
    "Bashar",
    "Hosni",
    "Recep",
    "Tayyip",
    "Emmanuel",
    "Angela",
    "Olaf",
    "Friedrich",
    "Helmut",
    "Gerhard",
    "Jacques",
    "Nicolas",
    "Francois",
    "Marine",
    "Giorgia",
    "Mario",
    "Matteo",
    "Silvio",
    "Pedro",
    "Pablo",
    "Luiz",
    "Inacio",
    "Jair",
    "Javier",
    "Jose",
    "Juan",
    "Carlos",
    "Luis",
    "Miguel",
    "Alejandro",
    "Andres",
    "Narendra",
    "Rahul",
    "Sonia",
    "Imran",
    "Nawaz",
    "Shehbaz",
    "Benazir",
    "Jacinda",
    "Anthony",
    "Kamala",
    "Keir",
    "Rishi",
    "Boris",
    "Liz",
    "Theresa",
    "Tony",
    "Gordon",
    "Nicola",
    "Ursula",
    "Jens",
    "Mette",
    "Viktor",
    "Recep",
    "Volodymyr",
    "Shinzo",
    "Fumio",
    "Yoshihide",
    "Kim",
    "Yoon",
    "Lee",
    "Jae",
    "Tsai",
    "Lai",
    "Ing",
    "Ching",
    "Hsien",
    "Kishida",
    "Jacob",
    "Cyril",
    "Thabo",
    "Nelson",
    "Kofi",
    "Antonio",
    "Ban",
    "Jean",
    "Pierre",
    "Klaus",
    "Wolfgang",
    "Hans",
    "Jurgen",
    "Franz",
    "Karl",
    "Lars",
    "Sven",
    "Nils",
    "Erik",
    "Anders",
    "Wasim",
    "Sachin",
    "Rahul",
    "Sourav",
    "Shane",
    "Brian",
    "Nasser",
    "Arjuna",
    "Aravinda",
    "Sanath",
]


@dataclass(frozen=True, slots=True)
class Gazetteer:
    exact: ahocorasick.Automaton  # case-sensitive names -> (kind, canonical, length)
    shouted: ahocorasick.Automaton  # upper-cased names, for lines without lower case
    first_names: frozenset[str]
    names: dict[str, tuple[str, str]]  # surface -> (kind, canonical)


def _read_lines(name: str) -> list[str]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def _read_gazetteer() -> dict[str, tuple[str, str]]:
    names: dict[str, tuple[str, str]] = {}
    for place in _read_lines("places_geonames.txt"):
        names[place] = ("place", place)
    kind = "place"
    for line in _read_lines("gazetteer.txt"):
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
    first = set(_read_lines("first_names.txt")) | set(_EXTRA_FIRST_NAMES)
    return Gazetteer(_automaton(names), _automaton(shouted), frozenset(first), names)
