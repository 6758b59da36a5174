"""The sources file: the feeds and sitemaps ingest follows, one per line.

    # comment lines start with '#'; so does a comment after whitespace
    https://example.com/feed.xml interval=300 source="Example News"
    https://example.com/news-sitemap.xml kind=sitemap max_age=48
    https://example.org/atom.xml pages=always language=de

Options (``name=value``, quoted with shell rules when the value has spaces):

- ``source`` (or ``name``): the outlet's name, the ``source`` of its articles (default: a
  news sitemap's publication name, else what clean takes: the page's host);
- ``interval``: seconds between polls (``WIREWATCH_INGEST_INTERVAL_SECONDS``), at least
  ``WIREWATCH_INGEST_MIN_INTERVAL_SECONDS``;
- ``kind``: ``auto`` (default), ``feed`` or ``sitemap``; the document says what it is,
  this only picks the default ``max_age``;
- ``pages``: fetch each new item's page: ``auto`` (unless the feed carries the full
  text), ``always``, ``never``; a sitemap's items always need their page;
- ``max_age``: hours; older dated items are skipped (0: no limit; default 0 for feeds,
  ``WIREWATCH_INGEST_SITEMAP_MAX_AGE_HOURS`` for sitemaps);
- ``language``: ISO 639-1 code for items that carry none.

The same URL twice, an unknown option or a bad value is refused with its line number. A
``Source`` is also the value of its record on the compacted ``news.sources`` topic (keyed by
its URL), so ``to_json`` / ``from_json`` are the wire format.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from streams.errors import BadRecord, ConfigError

__all__ = ["KINDS", "PAGES", "Source", "SourcesError", "load_sources", "parse_sources",
           "source_from_json"]

KINDS = ("auto", "feed", "sitemap")
PAGES = ("auto", "always", "never")
MAX_URL_CHARS = 2_048
MAX_NAME_CHARS = 256  # clean's bound on `source`
MAX_INTERVAL_SECONDS = 7 * 86_400
MAX_SOURCES = 100_000


class SourcesError(ConfigError):
    """A sources file (or a record on news.sources) that cannot be used, and why."""


@dataclass(frozen=True, slots=True)
class Source:
    url: str
    name: str | None = None
    interval: float | None = None  # seconds; None: the settings' default
    kind: str = "auto"
    pages: str = "auto"
    max_age: float | None = None  # hours; None: the default for the kind; 0: no limit
    language: str | None = None

    def to_json(self) -> bytes:
        return orjson.dumps({f.name: getattr(self, f.name) for f in fields(self)})

    def key(self) -> bytes:
        return self.url.encode("utf-8")


def check_url(url: str) -> str | None:
    """Why ``url`` cannot be a source (None when it can): http(s), a host, a sane length."""
    if len(url) > MAX_URL_CHARS:
        return f"URL is {len(url):,} characters, over {MAX_URL_CHARS:,}"
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        return "URL has spaces or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a bad port
    except ValueError as exc:
        return f"malformed URL: {exc}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"not an http(s) URL with a host: {url[:80]!r}"
    if port == 0:
        return "port 0"
    return None


def _number(option: str, raw: str, *, low: float, high: float) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SourcesError(f"{option}={raw!r} is not a number") from None
    if not low <= value <= high:
        raise SourcesError(f"{option}={raw!r} is out of range ({low:g} to {high:g})")
    return value


def _language(raw: str) -> str:
    code = raw.strip().lower().replace("_", "-")
    primary = code.split("-")[0]
    if len(primary) != 2 or not primary.isascii() or not primary.isalpha():
        raise SourcesError(f"language={raw!r} is not an ISO 639-1 code (e.g. en, de, pt-BR)")
    return primary


def _name(raw: str) -> str:
    name = " ".join(raw.split())
    if not name:
        raise SourcesError("source name is empty")
    if len(name) > MAX_NAME_CHARS:
        raise SourcesError(f"source name is {len(name)} characters, over {MAX_NAME_CHARS}")
    return name


def make_source(url: str, options: dict[str, str], *, min_interval: float = 0.0) -> Source:
    """A checked ``Source`` from its URL and raw ``name=value`` options."""
    reason = check_url(url)
    if reason:
        raise SourcesError(reason)
    values: dict[str, Any] = {}
    for option, raw in options.items():
        if option in ("source", "name"):
            values["name"] = _name(raw)
        elif option == "interval":
            values["interval"] = _number("interval", raw, low=max(min_interval, 1.0),
                                         high=MAX_INTERVAL_SECONDS)
        elif option == "kind":
            if raw not in KINDS:
                raise SourcesError(f"kind={raw!r}: expected one of {', '.join(KINDS)}")
            values["kind"] = raw
        elif option == "pages":
            if raw not in PAGES:
                raise SourcesError(f"pages={raw!r}: expected one of {', '.join(PAGES)}")
            values["pages"] = raw
        elif option == "max_age":
            values["max_age"] = _number("max_age", raw, low=0.0, high=24 * 3650)
        elif option == "language":
            values["language"] = _language(raw)
        else:
            raise SourcesError(f"unknown option {option!r} (known: source, interval, kind, "
                               "pages, max_age, language)")
    return Source(url=url, **values)


def _strip_comment(line: str) -> str:
    """Drop a '#' comment: a whole line, or '#' after whitespace (a URL's fragment stays)."""
    if line.lstrip().startswith("#"):
        return ""
    for index, char in enumerate(line):
        if char == "#" and index and line[index - 1] in " \t":
            return line[:index]
    return line


def parse_sources(lines: Iterable[str], *, min_interval: float = 0.0,
                  where: str = "sources") -> list[Source]:
    """Every source of a sources file's lines, in file order; ``SourcesError`` names the
    first bad line."""
    found: dict[str, Source] = {}
    for number, line in enumerate(lines, 1):
        text = _strip_comment(line).strip()
        if not text:
            continue
        try:
            words = shlex.split(text)
        except ValueError as exc:  # an unclosed quote
            raise SourcesError(f"{where}:{number}: {exc}") from None
        url, *rest = words
        options: dict[str, str] = {}
        try:
            for word in rest:
                option, sep, value = word.partition("=")
                if not sep or not option:
                    raise SourcesError(f"expected name=value, got {word!r}")
                if option in options:
                    raise SourcesError(f"option {option!r} given twice")
                options[option] = value
            source = make_source(url, options, min_interval=min_interval)
        except SourcesError as exc:
            raise SourcesError(f"{where}:{number}: {exc}") from None
        if source.url in found:
            raise SourcesError(f"{where}:{number}: {source.url} is listed twice")
        found[source.url] = source
        if len(found) > MAX_SOURCES:
            raise SourcesError(f"{where}: more than {MAX_SOURCES:,} sources")
    return list(found.values())


def load_sources(path: Path | str, *, min_interval: float = 0.0) -> list[Source]:
    """``parse_sources`` of a file (UTF-8)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourcesError(f"cannot read sources file {path}: {exc}") from None
    return parse_sources(text.splitlines(), min_interval=min_interval, where=str(path))


def source_from_json(raw: bytes) -> Source:
    """A ``Source`` from its news.sources record; ``BadRecord`` when it does not fit (any
    producer may write the topic, so every field is checked as the file's are)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRecord(f"source record is not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("url"), str):
        raise BadRecord("source record must be a JSON object with a string 'url'")
    known = {f.name for f in fields(Source)}
    unknown = set(data) - known
    if unknown:
        raise BadRecord(f"source record has unknown fields {sorted(unknown)}")
    options = {k: str(v) for k, v in data.items() if k != "url" and v is not None}
    try:
        source = make_source(data["url"], options)
    except SourcesError as exc:
        raise BadRecord(f"source record: {exc}") from None
    return source
