"""The one loader of the stages' word lists and other hand-edited data files.

Each stage keeps its lists in its own ``data/`` folder (``agents/tag/data/titles.txt``,
``agents/clean/data/boilerplate.txt``...), shipped in the wheel as package data (pyproject.toml,
``[tool.setuptools.package-data]``), and read through ``importlib.resources``, so an installed
package finds them as the source tree does.

The format is the same for every file: UTF-8 text, one entry a line. A line whose first
non-blank character is ``#`` is a comment and a blank line is skipped; whitespace at
either end of a line is not part of its entry. Every file starts with a comment saying what
it holds, where it came from and what reads it. An entry with structure (a phrase, ``alias =
canonical``, tab-separated fields) is described in its file's header; the module reading
the file parses it.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

__all__ = ["load_lines", "load_words"]


@cache
def load_lines(package: str, name: str) -> tuple[str, ...]:
    """The entries of ``<package>/data/<name>.txt`` (``package`` dotted, ``"agents.tag"``),
    in file order, comments and blank lines left out. Read once per process."""
    text = (files(package) / "data" / f"{name}.txt").read_text(encoding="utf-8")
    entries = (line.strip() for line in text.splitlines())
    return tuple(entry for entry in entries if entry and not entry.startswith("#"))


@cache
def load_words(package: str, name: str) -> frozenset[str]:
    """The entries of ``<package>/data/<name>.txt`` as a set (see :func:`load_lines`)."""
    return frozenset(load_lines(package, name))
