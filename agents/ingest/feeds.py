"""Feeds and sitemaps to items: what one fetched document lists.

``parse_document(body, url, content_type)`` sniffs the document and returns a ``Document``:

- **RSS 0.9x / 1.0 / 2.0 and Atom** through ``feedparser`` (6.x): it copes with what real
  feeds do wrong (wrong or missing encodings, BOMs, unclosed tags, undeclared entities,
  CDATA, relative links) and resolves relative links against ``xml:base`` and the feed's
  URL (passed as its Content-Location), so we do not rebuild that. Its date parser is not
  used: it turns "2020/1/10" into 1 December 2020 and a Unix epoch in ``dc:date`` into
  2015; dates are read here from the raw strings (ISO 8601, RFC 822, "Y/M/D h:m:s") or left
  empty, never guessed.
- **JSON Feed 1.0 / 1.1**, which feedparser 6 does not read: orjson, by the spec (a
  ``version`` of ``https://jsonfeed.org/version/...`` and an ``items`` list); JSON that is
  not a JSON Feed is ``not_a_feed``.
- **Sitemaps** (``urlset`` with Google News ``news:news`` or plain ``lastmod``, and
  ``sitemapindex``) through ``defusedxml``: no entity expansion, no DTD fetch, no network.
  A sitemap that is not well-formed is read leniently for its ``<loc>`` values; a
  ``<sitemap>`` or ``<url>`` with a bare URL and no ``<loc>`` counts too.

A gzip body that was not marked as such (``.xml.gz`` sitemaps, misconfigured servers) is
unpacked first, up to the same size cap. Failures raise ``DocumentError`` with a reason
from ``DOCUMENT_REASONS`` (a metric label).

Each ``Item`` has a deterministic ``id``: from its canonical link (``canonical_url`` of
the clean stage: tracking parameters and fragment dropped; the id clean itself gives an
article with that URL), else from its guid within the feed, else from its title and text.
"""

from __future__ import annotations

import html
import re
import time
import xml.etree.ElementTree as ElementTree
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
import orjson
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as safe_fromstring
from feedparser.exceptions import CharacterEncodingUnknown, ThingsNobodyCaresAboutButMe

from agents.clean.core import canonical_url, parse_date
from streams.records import stable_id

__all__ = ["DOCUMENT_REASONS", "Document", "DocumentError", "Item", "SitemapRef",
           "item_id", "parse_date_text", "parse_document"]

#: Why a fetched document gave no items (a metric label, with the fetch reasons).
DOCUMENT_REASONS = ("malformed", "not_a_feed", "bad_encoding", "too_large")
MAX_LINK_CHARS = 2_048  # clean dead-letters longer URLs
MAX_TITLE_CHARS = 1_000
MAX_ITEMS = 50_000  # a sitemap's limit; a feed never comes near it


class DocumentError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    link: str | None
    guid: str | None = None
    title: str | None = None
    published_at: str | None = None  # ISO 8601, as the item states it; None when unknown
    modified_at: str | None = None  # a sitemap's lastmod (not a publication date)
    summary: str | None = None
    summary_html: bool = True
    content: str | None = None  # the feed's full content, when it carries one
    content_html: bool = True
    language: str | None = None
    publication: str | None = None  # a news sitemap's publication name

    def newest_date(self) -> str | None:
        dates = [d for d in (self.published_at, self.modified_at) if d]
        return max(dates, key=_sort_key) if dates else None


@dataclass(frozen=True, slots=True)
class SitemapRef:
    url: str
    lastmod: str | None = None


@dataclass(slots=True)
class Document:
    kind: str  # rss090 rss10 rss20 atom10 ... | jsonfeed | urlset | news-sitemap | sitemapindex
    items: list[Item] = field(default_factory=list)
    sitemaps: list[SitemapRef] = field(default_factory=list)
    title: str | None = None
    language: str | None = None
    lenient: bool = False  # parsed past an XML error (feedparser's "bozo", or the loc scan)
    skipped: int = 0  # entries with nothing to identify them (no link, guid, title or text)

    @property
    def is_sitemap(self) -> bool:
        return self.kind in ("urlset", "news-sitemap", "sitemapindex")


# --------------------------------------------------------------------------- helpers

_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")
_SLASH_DATE = re.compile(
    r"(\d{4})[/.](\d{1,2})[/.](\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?")
_EARLIEST_YEAR = 1990


def _text(value: Any, limit: int = MAX_TITLE_CHARS) -> str | None:
    """One line of text: markup dropped, entities decoded, spaces collapsed."""
    if not isinstance(value, str):
        return None
    if "<" in value:
        value = _TAG.sub(" ", value)
    text = _SPACE.sub(" ", html.unescape(value)).strip()
    return text[:limit] or None


def _sort_key(iso: str) -> str:
    return iso if "T" in iso else iso + "T00:00:00"


def parse_date_text(raw: Any, now: float | None = None) -> str | None:
    """ISO 8601 from a feed's date text (ISO 8601 / W3C, RFC 822 with 2-digit years and US
    zones, "2020/1/10 14:33:00"); None when it cannot be read or is not plausible (before
    1990, or more than a day ahead). Never a guess."""
    if not isinstance(raw, str):
        if isinstance(raw, int | float) or raw is None:
            return None  # an epoch number where a date belongs: ambiguous, left empty
        return None
    raw = raw.strip()
    if not raw or len(raw) > 100:
        return None
    iso = parse_date(raw)
    if iso is None:
        match = _SLASH_DATE.fullmatch(raw)
        if match:
            y, mo, d, h, mi, s = (int(g) if g else 0 for g in match.groups())
            try:
                iso = datetime(y, mo, d, h, mi, s).isoformat()
            except ValueError:
                return None
            if match.group(4) is None:
                iso = iso[:10]
    if iso is None:
        return None
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    limit = (time.time() if now is None else now) + 86_400
    if moment.year < _EARLIEST_YEAR or moment.timestamp() > limit:
        return None
    return iso


def _http_link(value: Any, base: str) -> str | None:
    """An absolute http(s) URL from a link as written (relative ones resolved against
    ``base``), or None."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value:
        return None
    try:
        absolute = urljoin(base, value) if base else value
        parts = urlsplit(absolute)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if len(absolute) > MAX_LINK_CHARS or any(ord(c) < 33 for c in absolute):
        return None
    return absolute


def _language(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    primary = re.split(r"[-_\s]", value.strip(), maxsplit=1)[0].lower()
    return primary if len(primary) == 2 and primary.isascii() and primary.isalpha() else None


def item_id(link: str | None, guid: str | None, feed_url: str, title: str | None,
            text: str | None) -> str | None:
    """The item's deterministic id (see the module docstring); None when nothing identifies
    it."""
    if link:
        canonical = canonical_url(link)
        if canonical:
            return stable_id("url", canonical)
    if guid and guid.strip():
        return stable_id("guid", feed_url, guid.strip())
    if title or text:
        return stable_id("content", feed_url, title or "", (text or "")[:2000])
    return None


# --------------------------------------------------------------------------- sniffing

_BOM = b"\xef\xbb\xbf"
# The first element, past the XML declaration, comments, processing instructions, DOCTYPE.
_FIRST_ELEMENT = re.compile(
    rb"\A(?:\s|<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>\[]*(?:\[.*?\])?\s*>)*<([A-Za-z_][\w.:-]*)",
    re.DOTALL)
_ENTITY_DECLARATION = re.compile(rb"<!ENTITY", re.IGNORECASE)
_GZIP_MAGIC = b"\x1f\x8b"


def _gunzip(body: bytes, max_bytes: int) -> bytes:
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = decompressor.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise DocumentError("malformed", f"gzip body does not unpack: {exc}") from None
    if len(out) > max_bytes:
        raise DocumentError("too_large", f"gzip body unpacks to over {max_bytes:,} bytes")
    return out


def _utf16_or_32(head: bytes) -> bool:
    return head.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff", b"<\x00", b"\x00<"))


def parse_document(body: bytes, url: str, content_type: str | None = None, *,
                   max_bytes: int = 10 * 1024 * 1024, now: float | None = None) -> Document:
    """The items (or child sitemaps) of one fetched document; ``DocumentError`` otherwise."""
    if body.startswith(_GZIP_MAGIC):
        body = _gunzip(body, max_bytes)
    stripped = body.lstrip(b" \t\r\n")
    if stripped.startswith(_BOM):
        stripped = stripped[len(_BOM):].lstrip(b" \t\r\n")
    if not stripped:
        raise DocumentError("not_a_feed", "empty document")
    if stripped[:1] in (b"{", b"["):
        return _parse_json_feed(stripped, url, now)
    if _utf16_or_32(stripped[:4]):
        return _parse_feed(body, url, content_type, now)  # feedparser reads UTF-16/32
    if not stripped.startswith(b"<"):
        raise DocumentError("not_a_feed", f"does not start with '<' or '{{': {stripped[:40]!r}")
    if _ENTITY_DECLARATION.search(stripped, 0, 65_536):
        # Internal entity declarations have no place in a feed and are how XML bombs start.
        raise DocumentError("malformed", "the document declares XML entities; refused")
    first = _FIRST_ELEMENT.match(stripped[:65_536])
    root = first.group(1).decode("ascii", "replace").rsplit(":", 1)[-1].lower() if first else ""
    if root in ("urlset", "sitemapindex"):
        return _parse_sitemap(stripped, url, root, now)
    if root == "html" or stripped[:15].lower().startswith(b"<!doctype html"):
        raise DocumentError("not_a_feed", "an HTML page, not a feed")
    return _parse_feed(body, url, content_type, now)


# --------------------------------------------------------------------------- RSS / Atom


def _entry_link(entry: Any, base: str) -> str | None:
    link = _http_link(entry.get("link"), base)
    if link:
        return link
    for candidate in entry.get("links") or ():
        if candidate.get("rel", "alternate") == "alternate":
            link = _http_link(candidate.get("href"), base)
            if link:
                return link
    if entry.get("guidislink"):
        return _http_link(entry.get("id"), base)
    return None


def _entry_content(entry: Any) -> tuple[str | None, bool]:
    best: tuple[str | None, bool] = (None, True)
    for part in entry.get("content") or ():
        value = part.get("value")
        if isinstance(value, str) and value.strip() and len(value) > len(best[0] or ""):
            best = (value, part.get("type", "text/html") != "text/plain")
    return best


# A missing or non-XML Content-Type, an encoding feedparser corrected, an undeclared prefix.
_HARMLESS = ThingsNobodyCaresAboutButMe


def _parse_feed(body: bytes, url: str, content_type: str | None, now: float | None
                ) -> Document:
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    parsed = feedparser.parse(body, response_headers=headers, sanitize_html=False,
                              resolve_relative_uris=False)
    entries = parsed.get("entries") or []
    version = parsed.get("version") or ""
    problem = parsed.get("bozo_exception")
    if not entries and not version and isinstance(problem, CharacterEncodingUnknown):
        raise DocumentError("bad_encoding", f"no encoding reads it: {problem}")
    if isinstance(problem, _HARMLESS):
        problem = None
    if not entries:
        if problem is not None:
            name = type(problem).__name__
            if not version:
                raise DocumentError("not_a_feed", f"no feed found ({name}: {problem})")
            raise DocumentError("malformed", f"{version}, no items ({name}: {problem})")
        if not version:
            raise DocumentError("not_a_feed", "no RSS, Atom or RDF root element")
    feed = parsed.get("feed") or {}
    base = url  # feedparser applies xml:base itself; relative links resolve against the feed
    language = _language(feed.get("language"))
    doc = Document(kind=version or "unknown", title=_text(feed.get("title")),
                   language=language, lenient=problem is not None)
    for entry in entries[:MAX_ITEMS]:
        link = _entry_link(entry, base)
        guid = entry.get("id") if isinstance(entry.get("id"), str) else None
        title = _text(entry.get("title"))
        summary = entry.get("summary") if isinstance(entry.get("summary"), str) else None
        detail = entry.get("summary_detail") or {}
        content, content_html = _entry_content(entry)
        ident = item_id(link, guid, url, title, content or summary)
        if ident is None:
            doc.skipped += 1
            continue
        raw_date = entry.get("published") or entry.get("updated") or entry.get("created")
        doc.items.append(Item(
            id=ident, link=link, guid=guid, title=title,
            published_at=parse_date_text(raw_date, now),
            summary=summary or None, summary_html=detail.get("type", "text/html") != "text/plain",
            content=content, content_html=content_html,
            language=_language(detail.get("language")) or language,
        ))
    return doc


# --------------------------------------------------------------------------- JSON Feed


_JSON_FEED_VERSION = re.compile(r"https?://jsonfeed\.org/version/")
_BARE_VERSION = re.compile(r"1(?:\.\d)?")


def _parse_json_feed(body: bytes, url: str, now: float | None) -> Document:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise DocumentError("malformed", f"JSON does not parse: {exc}") from None
    version = data.get("version") if isinstance(data, dict) else None
    # The spec's version is a jsonfeed.org URL; some generators write the bare number.
    if not (isinstance(version, str) and (_JSON_FEED_VERSION.match(version)
                                          or _BARE_VERSION.fullmatch(version))):
        raise DocumentError("not_a_feed", "JSON, but not a JSON Feed (no jsonfeed.org version)")
    items = data.get("items")
    if not isinstance(items, list):
        raise DocumentError("malformed", "JSON Feed without an items list")
    base = _http_link(data.get("feed_url"), url) or url
    language = _language(data.get("language"))
    doc = Document(kind="jsonfeed", title=_text(data.get("title")), language=language)
    for raw in items[:MAX_ITEMS]:
        if not isinstance(raw, dict):
            doc.skipped += 1
            continue
        link = _http_link(raw.get("url"), base) or _http_link(raw.get("external_url"), base)
        guid = raw.get("id")
        guid = str(guid) if isinstance(guid, str | int) and not isinstance(guid, bool) else None
        title = _text(raw.get("title"))
        content_html = raw.get("content_html") if isinstance(raw.get("content_html"), str) else None
        content_text = raw.get("content_text") if isinstance(raw.get("content_text"), str) else None
        summary = raw.get("summary") if isinstance(raw.get("summary"), str) else None
        content = content_html or content_text
        ident = item_id(link, guid, url, title, content or summary)
        if ident is None:
            doc.skipped += 1
            continue
        doc.items.append(Item(
            id=ident, link=link, guid=guid, title=title,
            published_at=parse_date_text(raw.get("date_published"), now),
            modified_at=parse_date_text(raw.get("date_modified"), now),
            summary=summary, summary_html=False,
            content=content, content_html=content_html is not None,
            language=_language(raw.get("language")) or language,
        ))
    return doc


# --------------------------------------------------------------------------- sitemaps

_LOC = re.compile(rb"<loc>\s*(?:<!\[CDATA\[)?\s*([^<\s\]]+)", re.IGNORECASE)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].lower()


def _children(element: ElementTree.Element) -> Iterator[tuple[str, ElementTree.Element]]:
    for child in element:
        if isinstance(child.tag, str):
            yield _local(child.tag), child


def _find(element: ElementTree.Element, *path: str) -> ElementTree.Element | None:
    current: ElementTree.Element | None = element
    for name in path:
        if current is None:
            return None
        current = next((child for local, child in _children(current) if local == name), None)
    return current


def _find_text(element: ElementTree.Element, *path: str) -> str | None:
    found = _find(element, *path)
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


def _loc(element: ElementTree.Element, base: str) -> str | None:
    loc = _find_text(element, "loc")
    if loc is None and element.text and element.text.strip():
        loc = element.text.strip()  # <sitemap>https://...</sitemap>: no <loc>, as some write
    return _http_link(loc, base)


def _parse_sitemap(body: bytes, url: str, root_name: str, now: float | None) -> Document:
    try:
        root = safe_fromstring(body, forbid_dtd=False, forbid_entities=True,
                               forbid_external=True)
    except DefusedXmlException as exc:
        raise DocumentError("malformed", f"refused XML construct: {exc}") from None
    except ElementTree.ParseError as exc:
        return _scan_sitemap(body, url, root_name, str(exc))
    root_name = _local(root.tag)
    if root_name == "sitemapindex":
        doc = Document(kind="sitemapindex")
        for local, element in _children(root):
            if local != "sitemap":
                continue
            loc = _loc(element, url)
            if loc:
                doc.sitemaps.append(SitemapRef(loc, parse_date_text(_find_text(element, "lastmod"),
                                                                    now)))
        return doc
    doc = Document(kind="urlset")
    for local, element in _children(root):
        if local != "url" or len(doc.items) >= MAX_ITEMS:
            continue
        loc = _loc(element, url)
        if loc is None:
            doc.skipped += 1
            continue
        news = _find(element, "news")
        title = published = publication = language = None
        if news is not None:
            doc.kind = "news-sitemap"
            title = _text(_find_text(news, "title"))
            published = parse_date_text(_find_text(news, "publication_date"), now)
            publication = _text(_find_text(news, "publication", "name"), 256)
            language = _language(_find_text(news, "publication", "language"))
        ident = item_id(loc, None, url, None, None)
        assert ident is not None
        doc.items.append(Item(
            id=ident, link=loc, title=title, published_at=published,
            modified_at=parse_date_text(_find_text(element, "lastmod"), now),
            summary=None, language=language, publication=publication,
        ))
    return doc


def _scan_sitemap(body: bytes, url: str, root_name: str, error: str) -> Document:
    """A sitemap that is not well-formed: its <loc> values, if it has any."""
    locs = [loc for raw in _LOC.findall(body)
            if (loc := _http_link(html.unescape(raw.decode("utf-8", "replace")), url))]
    if not locs:
        raise DocumentError("malformed", f"sitemap is not well-formed XML: {error}")
    if root_name == "sitemapindex":
        return Document(kind="sitemapindex", sitemaps=[SitemapRef(loc) for loc in locs],
                        lenient=True)
    items = []
    for loc in locs[:MAX_ITEMS]:
        ident = item_id(loc, None, url, None, None)
        assert ident is not None
        items.append(Item(id=ident, link=loc))
    return Document(kind="urlset", items=items, lenient=True)

