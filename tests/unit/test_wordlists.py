"""The stages' data files (agents/<stage>/data/*.txt) and their one loader, agents.wordlists.

Every file parses the one way the loader reads it: a "#" header first, one entry a line, no
stray whitespace, no duplicate entries; the files with structured entries (boilerplate rules,
gazetteer aliases, category lines) also parse as their readers expect. Every file is read by
its stage, and every stage's data/ folder is package data (a package's, so the wheel has it).
"""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from pathlib import Path

import pytest

from agents.wordlists import load_lines, load_words
from tests.conftest import REPO

DATA_FILES = sorted((REPO / "agents").glob("*/data/*.txt"))
# Entries that may repeat in a file, by file: none so far.
REPEATS_ALLOWED: dict[str, set[str]] = {}
# Files whose entries are tab-separated fields, and how many.
TAB_FIELDS = {"agents/clean/data/boilerplate.txt": 4}


def _name(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _package(path: Path) -> str:
    return ".".join(path.parent.parent.relative_to(REPO).parts)


def test_the_stages_have_data_files() -> None:
    stages = {path.parent.parent.name for path in DATA_FILES}
    assert {"clean", "tag"} <= stages, stages


def test_loader_skips_comments_and_blank_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "wordlists_probe"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "data" / "probe.txt").write_text(
        "# A header comment\n\nfirst\n  # an indented comment\n  second entry \t\n\n"
        "third\t# not a comment\n#last\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    lines = load_lines("wordlists_probe", "probe")
    assert lines == ("first", "second entry", "third\t# not a comment")
    assert load_words("wordlists_probe", "probe") == frozenset(lines)
    assert load_lines("wordlists_probe", "probe") is lines  # read once


@pytest.mark.parametrize("path", DATA_FILES, ids=_name)
def test_data_file_parses(path: Path) -> None:
    raw = path.read_bytes()
    text = raw.decode("utf-8")  # strict: a bad byte fails here
    assert text.endswith("\n") and not text.endswith("\n\n"), "one newline at the end"
    assert "\r" not in text
    lines = text.split("\n")[:-1]
    assert lines[0].startswith("# "), "a header comment first: what, where from, read by whom"
    for number, line in enumerate(lines, 1):
        assert line == line.rstrip(), f"line {number}: trailing whitespace"
        assert line == line.lstrip(), f"line {number}: leading whitespace"
    entries = load_lines(_package(path), path.stem)
    assert entries, "no entries"
    assert entries == tuple(ln for ln in lines if ln and not ln.startswith("#"))
    repeated = {e for e, n in Counter(entries).items() if n > 1}
    assert repeated <= REPEATS_ALLOWED.get(_name(path), set()), f"duplicates: {sorted(repeated)}"
    fields = TAB_FIELDS.get(_name(path), 1)
    for entry in entries:
        parts = entry.split("\t")
        assert len(parts) == fields, f"{entry!r}: {fields} tab-separated field(s) expected"
        assert all(p and p == p.strip() and "  " not in p for p in parts), f"stray space: {entry!r}"


@pytest.mark.parametrize("path", DATA_FILES, ids=_name)
def test_data_file_is_read_by_its_stage(path: Path) -> None:
    sources = "\n".join(p.read_text(encoding="utf-8") for p in path.parent.parent.rglob("*.py"))
    call = rf"""load_(?:lines|words)\(\s*"{re.escape(_package(path))}",\s*"{re.escape(path.stem)}"\)"""
    assert re.search(call, sources), f"nothing in {_package(path)} loads {path.name}"


def test_boilerplate_rules_parse() -> None:
    from agents.clean.core import BOILERPLATE_RULES, Action

    rows = load_lines("agents.clean", "boilerplate")
    assert len(rows) == len(BOILERPLATE_RULES)
    for row, rule in zip(rows, BOILERPLATE_RULES, strict=True):
        name, action, pattern, why = row.split("\t")
        assert (rule.name, rule.action, rule.pattern, rule.why) == (name, Action(action), pattern, why)
        re.compile(pattern)
        assert re.fullmatch(r"[a-z_]+", name), name


def test_gazetteer_lines_parse() -> None:
    sections = []
    surfaces: Counter[str] = Counter()
    for line in load_lines("agents.tag", "gazetteer"):
        if line.startswith("["):
            assert re.fullmatch(r"\[(place|org|person)\]", line), line
            sections.append(line)
            continue
        surface, sep, canonical = line.partition("=")
        assert surface.strip() and (not sep or canonical.strip()), line
        assert "=" not in canonical, line
        surfaces[surface.strip()] += 1
    assert len(sections) == len(set(sections)), "each section once"
    assert not [s for s, n in surfaces.items() if n > 1], "a name in two sections"


def test_category_lines_parse() -> None:
    from agents.tag.categories import CATEGORIES

    labels = []
    for line in load_lines("agents.tag", "categories"):
        label, sep, words = line.partition(":")
        assert sep and re.fullmatch(r"[a-z]+", label), line
        labels.append(label)
        listed = words.split()
        assert listed and len(listed) == len(set(listed)), f"{label}: a word twice"
        assert all(w == w.lower() for w in listed), label
    assert tuple(labels) == CATEGORIES


def test_every_data_folder_is_package_data() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "data/*" in config["tool"]["setuptools"]["package-data"]["*"]
    for folder in {path.parent for path in DATA_FILES}:
        # package-data globs apply to packages: the folder's parent must be one.
        assert (folder.parent / "__init__.py").is_file(), f"{folder.parent} is not a package"
