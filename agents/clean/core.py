"""The clean stage's pure core: raw bytes from ``news.raw`` in, one ``Article`` out.

Flow of :func:`clean`, cheapest checks first so bad input is rejected before any parsing:

1. **Guard the bytes** (:func:`decode_payload`): size limit, UTF-8 BOM, NUL bytes and
   control-character ratio, strict UTF-8.
2. **Parse** (:func:`parse_payload`) by the first non-blank character: ``{`` is a JSON
   object (each field's type, then its size: ``MAX_ID_CHARS``, ``MAX_URL_CHARS``...); ``<``
   is HTML (:func:`parse_html`, selectolax/Lexbor, after a linear scan that refuses markup
   Lexbor would take superlinear time or memory on: too deep, too many tags or attributes,
   formatting elements it would copy into every paragraph); any other text that parses as
   JSON (``[1]``, ``42``, ``"x"``) is not an object; everything else (including "[Reuters]
   ...") is plain text. Each path yields a :class:`Parsed`: metadata plus the body as text
   with one paragraph per line. HTML character references left in JSON/plain text are
   decoded.
3. **Unicode repair** (:func:`fix_unicode`): mojibake (ftfy, only when a cheap regex sees the
   tell-tale byte pairs, because ftfy costs ~300 µs per article, and only over the first
   ``_MAX_REPAIR_*`` characters, lines and sequences), NFC (runs of combining marks cut to
   30 first), control and zero-width characters.
4. **Paragraphs and boilerplate** (:func:`body_paragraphs`): whitespace collapsed per line,
   promo/footer/byline lines removed by the :data:`BOILERPLATE_RULES` table, paragraphs
   joined by a blank line and cut to ``max_body_chars``.
5. **Metadata**: title (or the body's first sentence), date, URL, source, language
   (:func:`detect_language`), then the deterministic id (:func:`article_id`; a message key
   used as the id is held to ``MAX_ID_CHARS``).

Failures the publisher can fix raise a ``streams.errors.RejectedInput`` subclass; anything
else escaping from here is a bug in this module. Every field from outside has a size bound
and every step a work bound: no payload up to the 1 MiB default ``max_bytes`` costs more
than ~0.5 s of CPU on the 2-core dev machine, the worst being pages at the edge of the HTML
bounds (tests/unit/test_clean_limits.py holds the pathological inputs).

Plain text: every non-empty line is a paragraph. Single-newline paragraphs (seed 003) are far
more common in news feeds than hard-wrapped lines, so lines are never re-joined.
"""

from __future__ import annotations

import codecs
import functools
import html as html_lib
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum
from itertools import accumulate, islice, repeat
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import ftfy
import orjson
from selectolax.lexbor import LexborHTMLParser, LexborNode

from agents.clean.scan import markup_counts
from agents.wordlists import load_lines
from streams.errors import (
    BadEncoding,
    BadId,
    BinaryPayload,
    EmptyBody,
    FieldTooLong,
    MalformedJSON,
    NotAnObject,
    TooComplex,
    TooLarge,
    WrongFieldType,
)
from streams.records import Article, stable_id

__all__ = [
    "BOILERPLATE_RULES",
    "Action",
    "BoilerplateRule",
    "Parsed",
    "article_id",
    "body_paragraphs",
    "canonical_url",
    "clean",
    "decode_payload",
    "detect_language",
    "fallback_title",
    "fix_unicode",
    "one_line",
    "parse_date",
    "parse_html",
    "parse_payload",
    "strip_boilerplate",
    "unescape_entities",
    "url_host",
]

MAX_TITLE_CHARS = 500
FALLBACK_TITLE_CHARS = 200
# A title is read up to this many characters before it is cut to MAX_TITLE_CHARS (only a
# title with thousands of blank or invisible characters reads differently): repairing the
# Unicode of a megabyte "title" would cost a second for 500 characters kept.
_TITLE_READ_CHARS = 8 * MAX_TITLE_CHARS

# Size bounds on the fields read from outside. Records carry them through every topic (ids
# also as Kafka keys and, up to 200 of them, on each alert), so none may be unbounded. An id,
# message key, URL, source, language or date over its bound that the publisher sent as a
# field (or as the key) is refused, FieldTooLong (reason "field_too_long"), naming the field:
# only the publisher can fix it, and a hash or a cut would silently change what they sent.
# The same metadata read from an HTML page (canonical link, og:site_name, <html lang>, a
# date in a meta tag) is dropped instead, like an unreadable date: the page's body is still
# good. Titles are cut to MAX_TITLE_CHARS, bodies to max_body_chars.
#: Ids: the longest in real feeds are RSS guids that are permalinks (205 characters in
#: ../shared/data/feeds); 512 leaves room for long URLs, and 200 ids on an alert stay
#: within 100 KB.
MAX_ID_CHARS = 512
#: The de-facto URL limit: the sitemap protocol requires URLs under 2,048 characters, and
#: browsers and CDNs fail near it; watches' webhook URLs have the same bound.
MAX_URL_CHARS = 2_048
#: An outlet name ("The Daily Example", rarely past 60 characters) or a host name (at most
#: 253 in DNS); it is repeated in every alert's source list.
MAX_SOURCE_CHARS = 256
#: Software must handle BCP 47 tags of up to 35 characters (RFC 5646, 4.4.1); 64 leaves room
#: for sloppy values that still start with a code ("en-US,en;q=0.9,fr;q=0.8").
MAX_LANGUAGE_CHARS = 64
#: The longest date forms (RFC 2822 with a zone comment, ISO 8601 with nanoseconds and an
#: offset) stay under 60 characters.
MAX_DATE_CHARS = 100
#: A host name, at most 253 characters in DNS: a longer "host" is not one.
_MAX_HOST_CHARS = 253
_UTF8_BOM = b"\xef\xbb\xbf"
# More than this share of C0 control bytes (besides tab/newlines) means "not text": genuine
# articles have essentially none, while terminal dumps or binary blobs have plenty.
_MAX_CONTROL_RATIO = 0.10
_CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])


# --------------------------------------------------------------------------- step 1: bytes


def decode_payload(raw: bytes, max_bytes: int) -> str:
    """Check the raw bytes and decode them, or raise the matching ``RejectedInput``."""
    if len(raw) > max_bytes:
        raise TooLarge(f"payload is {len(raw):,} bytes, over the {max_bytes:,}-byte limit")
    if raw.startswith(_UTF8_BOM):
        raw = raw[len(_UTF8_BOM) :]
    # Binary first: a PNG or gzip blob is better reported as binary than as bad UTF-8.
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise BinaryPayload(f"payload contains a NUL byte at offset {nul}: binary data, not text")
    if raw:
        controls = len(raw) - len(raw.translate(None, _CONTROL_BYTES))
        if controls / len(raw) > _MAX_CONTROL_RATIO:
            raise BinaryPayload(
                f"payload is {controls / len(raw):.0%} control characters "
                f"({controls} of {len(raw)} bytes): binary data, not text"
            )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if _HTML_DOCUMENT.match(raw) and (text := _decode_legacy_page(raw)) is not None:
            return text
        bad = raw[exc.start : exc.start + 1].hex()
        raise BadEncoding(
            f"payload is not valid UTF-8: {exc.reason} (byte 0x{bad} at offset {exc.start}); "
            "publishers must send UTF-8 (an HTML page may declare another charset)"
        ) from None


# A whole HTML page, as fetched from the web: the only input that may be in a legacy charset.
_HTML_DOCUMENT = re.compile(rb"\s*<(?:!doctype\s+html|html|head|meta|\?xml)\b", re.IGNORECASE)
_DECLARED_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?([a-zA-Z0-9_.:-]{1,40})""",
                               re.IGNORECASE)
#: The declaration must come early (the HTML standard reads the first 1,024 bytes); detection
#: reads this much (its cost grows with it; the page's start says enough).
_CHARSET_SCAN_BYTES = 4_096
_DETECT_BYTES = 65_536


def _decode_legacy_page(raw: bytes) -> str | None:
    """An HTML page that is not UTF-8: decoded with its declared charset when the bytes bear
    it out, else with the charset detected from the bytes (charset-normalizer), else None.
    A declaration that lies ("utf-8" on a windows-1252 page, "iso-8859-1" on Cyrillic) is
    common; a single-byte charset decodes any bytes, so it is checked against detection."""
    from charset_normalizer import from_bytes  # only legacy pages pay for the import

    declared = _declared_charset(raw[:_CHARSET_SCAN_BYTES])
    matches = from_bytes(raw[:_DETECT_BYTES])
    best = matches.best()
    candidates = [] if best is None else [best.encoding]
    if declared is not None:
        declared_match = next((m for m in matches if _same_codec(m.encoding, declared)), None)
        # The declaration wins unless detection finds it a mess and has a cleaner reading.
        if declared_match is not None and (best is None or declared_match.chaos <= best.chaos + 0.1):
            candidates.insert(0, declared)
    for encoding in candidates:
        try:
            return raw.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
    return None


def _declared_charset(head: bytes) -> str | None:
    match = _DECLARED_CHARSET.search(head)
    if match is None:
        return None
    name = match.group(1).decode("ascii").lower()
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _same_codec(a: str, b: str) -> bool:
    try:
        return codecs.lookup(a).name == codecs.lookup(b).name
    except LookupError:
        return False


# --------------------------------------------------------------------------- step 2: parse


@dataclass(slots=True)
class Parsed:
    """What one payload says, before cleaning. ``body`` holds one paragraph per line."""

    body: str = ""
    title: str | None = None
    id: str | None = None
    url: str | None = None
    source: str | None = None
    published_at: str | None = None
    language: str | None = None
    authors: list[str] = field(default_factory=list)
    canonical_url: str | None = None


# JSON scalars and arrays start with one of these; anything else can only be plain text.
_JSON_VALUE_START = frozenset('["-0123456789tfn')


def parse_payload(text: str) -> Parsed:
    """Dispatch on the payload's shape: JSON object, HTML or plain text."""
    stripped = text.lstrip()
    first = stripped[:1]
    if first == "{":
        try:
            data = orjson.loads(stripped)
        except orjson.JSONDecodeError as exc:
            raise MalformedJSON(f"payload starts with '{{' but is not valid JSON: {exc}") from None
        if not isinstance(data, dict):  # e.g. "{} []" cannot parse, but stay defensive
            raise NotAnObject(f"payload is a JSON {_json_kind(data)}, expected an object")
        return _parse_json(data)
    if first in _JSON_VALUE_START:
        try:
            data = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            return _parse_plain(text)  # "[Reuters] ...", "2024 was...": plain text
        raise NotAnObject(
            f"payload is a JSON {_json_kind(data)}, expected an object with title/text fields"
        )
    if first == "<":
        return parse_html(stripped)
    return _parse_plain(text)


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def _describe(value: object) -> str:
    shown = repr(value)
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return f"{_json_kind(value)} {shown}"


def _check_length(what: str, value: str | None, limit: int) -> None:
    if value is not None and len(value) > limit:
        raise FieldTooLong(
            f"{what} is {len(value):,} characters, over the {limit:,}-character limit"
        )


def _within(value: str | None, limit: int) -> str | None:
    """``value``, or None when it is longer than ``limit`` (metadata read from markup)."""
    return value if value is None or len(value) <= limit else None


def _str_field(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None or isinstance(value, str):
        return value
    raise WrongFieldType(f"field {name!r} must be a string or null, got {_describe(value)}")


def _id_field(data: dict[str, Any]) -> str | None:
    value = data.get("id")
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise WrongFieldType(f"field 'id' must be a string, an integer or null, got {_describe(value)}")


def _date_field(data: dict[str, Any]) -> str | None:
    value = data.get("published_at")
    if value is None:
        return None
    if isinstance(value, str):
        return parse_date(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _epoch_to_iso(float(value))
    raise WrongFieldType(
        "field 'published_at' must be an ISO-8601 string, unix seconds or null, "
        f"got {_describe(value)}"
    )


# A JSON "text" that is really markup: starts with a tag and closes one somewhere.
_LOOKS_LIKE_HTML = re.compile(r"\s*<[a-zA-Z!]", re.ASCII)


def _parse_json(data: dict[str, Any]) -> Parsed:
    # Read every field first, so a wrong type is reported whatever else is missing.
    text = _str_field(data, "text")
    markup = _str_field(data, "html")
    parsed = Parsed(
        title=_str_field(data, "title"),
        id=_id_field(data),
        url=_str_field(data, "url"),
        source=_str_field(data, "source"),
        published_at=_date_field(data),
        language=_str_field(data, "language"),
    )
    # Then the sizes, still before any costly work.
    raw_date = data.get("published_at")
    raw_date = raw_date if isinstance(raw_date, str) else None
    if (
        len(parsed.id or "") > MAX_ID_CHARS or len(parsed.url or "") > MAX_URL_CHARS
        or len(parsed.source or "") > MAX_SOURCE_CHARS or len(raw_date or "") > MAX_DATE_CHARS
        or len(parsed.language or "") > MAX_LANGUAGE_CHARS
    ):  # fmt: skip
        _check_length("field 'id'", parsed.id, MAX_ID_CHARS)
        _check_length("field 'url'", parsed.url, MAX_URL_CHARS)
        _check_length("field 'source'", parsed.source, MAX_SOURCE_CHARS)
        _check_length("field 'published_at'", raw_date, MAX_DATE_CHARS)
        _check_length("field 'language'", parsed.language, MAX_LANGUAGE_CHARS)
    if parsed.title:
        parsed.title = unescape_entities(parsed.title[:_TITLE_READ_CHARS])
    if text and text.strip():
        if _LOOKS_LIKE_HTML.match(text) and "</" in text:
            parsed.body = parse_html(text).body
        else:
            parsed.body = unescape_entities(text)
    elif markup:
        _merge_missing(parsed, parse_html(markup))
    return parsed


# Only complete, well-formed references: html.unescape alone would also turn the legacy
# semicolon-less forms ("&copy", "&amp") inside ordinary words into symbols.
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z][a-zA-Z0-9]{1,31});")


def unescape_entities(text: str) -> str:
    """Decode HTML character references left in text fields by RSS-fed publishers."""
    if "&" not in text:
        return text
    return _ENTITY.sub(_unescape_match, text)


def _unescape_match(match: re.Match[str]) -> str:
    return _unescape_reference(match.group())


# A text holds few distinct references, often many times ("&amp;", "&#8217;").
_unescape_reference = functools.lru_cache(maxsize=4096)(html_lib.unescape)


def _merge_missing(into: Parsed, extra: Parsed) -> None:
    """Fill ``into`` from ``extra`` where ``into`` has nothing: explicit JSON fields win."""
    into.body = extra.body
    into.title = into.title or extra.title
    into.url = into.url or extra.url
    into.source = into.source or extra.source
    into.published_at = into.published_at or extra.published_at
    into.language = into.language or extra.language
    into.authors = into.authors or extra.authors
    into.canonical_url = into.canonical_url or extra.canonical_url


# "date 2024-05-31" (or "Date: 2024-05-31T10:00Z") opening a plain-text payload.
_DATE_PREFIX = re.compile(
    r"\s*date\s*:?\s*(\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
    r"(?:Z|[+-]\d{2}:?\d{2})?)?)(?=\s|$)\s*",
    re.IGNORECASE | re.ASCII,
)


def _parse_plain(text: str) -> Parsed:
    published = None
    match = _DATE_PREFIX.match(text)
    if match:
        published = parse_date(match.group(1))
        text = text[match.end() :]
    head, _, rest = unescape_entities(text).lstrip().partition("\n")
    return Parsed(title=head, body=rest, published_at=published)


# --------------------------------------------------------------------------- HTML

# Removed with their content before the body is read: never article prose.
_DROP_TAGS = list(load_lines("agents.clean", "drop_tags"))
# Lexbor pre-selects candidates in C; the regex then decides on whole class/id tokens, so
# "header" or "thread" (which contain "ad") survive while "ad-slot" or "share-bar" go.
_JUNK_CANDIDATES = ",".join(
    f"[{attr}*={word}]"
    for attr in ("class", "id")
    for word in ("ad", "share", "social", "related", "newsletter", "cookie", "consent",
                 "promo", "comment", "sponsor", "subscri", "outbrain", "taboola", "recirc")
)  # fmt: skip
_JUNK_ATTR = re.compile(
    r"(?:^|[\s_-])(?:ads?(?:$|[\s_-])|advert|adslot|adunit|share|sharing|social|related"
    r"|newsletter|cookie|consent|promo|comments?(?!ary)|sponsor|subscri|outbrain|taboola|recirc)"
)
_NEVER_DROP = frozenset({"html", "body", "article", "main"})
# Elements whose boundaries are paragraph boundaries in the extracted text.
_BLOCKS = (
    "p,div,section,h1,h2,h3,h4,h5,h6,li,dd,dt,blockquote,pre,table,tr,td,th,br,hr,"
    "ul,ol,dl,article,main"
)
# Prose: a <p> of at least _PROSE_CHARS characters with at most _PROSE_LINK_SHARE of them in
# links. A page with _MIN_PROSE_CHARS of prose, and _MIN_PROSE_SHARE of its unlinked text in
# it, is read from its paragraph elements only, under the smallest element holding
# _PROSE_COVER of the prose (see _main_text).
_PROSE_CHARS = 60
_PROSE_LINK_SHARE = 0.3
_MIN_PROSE_CHARS = 200
_MIN_PROSE_SHARE = 0.4  # of the container's text outside links
# Work bounds of the paragraph reading (each ancestor step is a Python call): more prose
# paragraphs than this and the page is read block by block instead; ancestors are followed
# this far up (an article's paragraphs sit a few levels below its root; markup may nest
# 1,000 deep).
_MAX_PARAGRAPHS = 3_000
_MAX_WALK = 48
_MAX_WIDEN = 3  # levels a prose root may widen to take in a lede (see _prose_root)
_PROSE_COVER = 0.85
_PARAGRAPH_ELEMENTS = "p,h2,h3,h4,h5,h6,blockquote,pre,li,dd"
# A <div> whose child is one of these is a container, not a paragraph.
_INNER_BLOCKS = "p,div,section,article,ul,ol,dl,table,blockquote,pre,h1,h2,h3,h4,h5,h6"
_PARAGRAPH_LINK_SHARE = 0.5
# Paragraph elements inside these are not the article's prose.
_NOT_PROSE = frozenset({"figure", "figcaption", "aside", "nav", "footer", "form", "header",
                        "button", "select", "label", "table"})
# A private-use character marks block boundaries, so the source's own newlines (mere
# whitespace in HTML) can be collapsed without losing paragraph breaks.
_SEP = "\ue000"
# <meta> keys of a page's date, the first readable one wins.
_META_DATE_KEYS = load_lines("agents.clean", "meta_date_keys")


# Lexbor (selectolax) parses real pages in milliseconds but is superlinear in a few structures,
# and one message built from them stalls the worker. Measured on this machine (one core):
#
# * the stack of open elements: block start tags and most end tags scan it, so depth costs
#   quadratic time (20,000 nested <div>s: 1.8 s; 25,000 nested <span>s then as many </div>s,
#   300 KB: 4.0 s);
# * attributes: each is compared with the element's others (200,000 on one element: 141 s),
#   and their names go into a table that degrades past ~20,000 distinct names (76,800 spread
#   over 300 elements: 2.6 s; 60,000 <html aN> tags, merged into one element: 18 s);
# * formatting elements left open (<b id=1>...<b id=999>) that a block's end tag pops are
#   re-created by the parser in every later paragraph: 69 KB made 4 million elements (1.2 s);
#   1 MB would exhaust memory;
# * <option>s in one <select>: 30,000 take 3.7 s;
# * and every element costs ~4 µs in clean() after parsing (250,000 <br>s: 0.9 s).
#
# _check_markup tokenizes the markup once (one regex, linear: every quantifier is possessive
# and an unclosed comment, quote or script runs to the end, as in HTML) and refuses what would
# cross a bound. Depth and open formatting elements are first bounded by plain running counts
# of start and end tags (computed in C); only markup those counts cannot clear goes through
# _simulate_tree, a rough model of the tree builder that knows names, implied end tags and the
# list of active formatting elements. Nesting deeper than _MAX_DEPTH stays a TooLarge, as
# before; the other bounds raise TooComplex.
#
# The regex costs ~1 ms on a real page, as much as parsing it. A compiled scan
# (agents/clean/scan.pyx: the same tokens, counted in one pass, ~0.3 ms) goes first; markup
# whose counts clear every bound (all real pages) is parsed at once, and only the rest, or
# markup whose tokens depend on Unicode case folding, takes the regex path.

#: Real pages nest a few dozen elements deep (at most 20 in ../shared/data/feeds/pages).
_MAX_DEPTH = 1000
#: Start and end tags, plus the copies of formatting elements the parser will make. The real
#: pages beside the repository have at most 2,300 tags (1,134 elements); 50,000 is 20 times
#: that and costs at most ~0.2 s through clean() (50,000 <br>s or <p>s).
_MAX_TAGS = 50_000
#: On one tag. The real pages have at most 15; 256 on every element of a 1 MiB page parse in
#: 0.15 s, 1,000 in 0.5 s.
_MAX_ATTRIBUTES = 256
#: Distinct attribute names in a page. The real pages have 34 to 72; 20,000 parse in 35 ms,
#: 40,000 in 0.45 s.
_MAX_ATTRIBUTE_NAMES = 20_000
#: <option> and <optgroup> tags. A country list has ~250; 5,000 in one <select> parse in 0.1 s.
_MAX_OPTIONS = 5_000
# Markup with at most this many "<" and characters is not scanned (the scan costs about as
# much as parsing a small page): it cannot nest deeper than _MAX_DEPTH or come near the other
# bounds; the worst it can do is make ~90,000 formatting copies (300 unclosed <b id=N> and 300
# paragraphs: 0.25 s) or put ~8,000 attributes on one element (0.1 s). A single article in a
# light page is below both (~550 tags in bench/clean_bench.py's pages).
_SCAN_MIN_TAGS = 600
_SCAN_MIN_CHARS = 32_768

# The text of scripts, styles, comments... is not markup: the scan skips it, as the parser does.
_RAW_TEXT = "script|style|textarea|title|xmp|iframe|noembed|noframes|plaintext"
_RAW_TEXT_FIRST = "sStTxXiInNpP"  # their first letters: a cheap test before the names
# The attributes of a tag: up to ">", except in a value quoted right after "=" (which may hold
# ">"; a quote anywhere else is part of a name, as in HTML).
_TAG_REST = r"""([^>=]*+(?:=\s*+(?:"[^"]*+"?|'[^']*+'?)?[^>=]*+)*+)"""
# One token per match: a comment (no groups), or a tag: (raw-text name, "/" and name,
# attributes); a raw-text element's match runs on over its text.
_MARKUP_TOKEN = re.compile(
    r"<(?:!--[^-]*+(?:-(?!->)[^-]*+)*+(?:-->)?"
    rf"|(?:(?=[{_RAW_TEXT_FIRST}])(?=((?i:{_RAW_TEXT}))(?![^\s/>]))|)(/?[a-zA-Z][^\s/>]*+){_TAG_REST}"
    r"(?(1)(?:>[^<]*+(?:<(?!/(?i:\1))[^<]*+)*+)?))"
)
_NOT_ATTRIBUTE_SEPARATOR = bytes(sorted(set(range(256)) - set(b" \t\n\r\f/=")))
_ATTRIBUTE_NAME = re.compile(
    r"""((?:=|[^\s/>=])[^\s/>=]*+)(?:\s*+=\s*+(?:"[^"]*+"?|'[^']*+'?|[^\s>]*+))?"""
)
# Elements that never hold others (and html, head, body: a repeat merges into the first).
_VOID = frozenset({
    "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "image",
    "img", "input", "isindex", "keygen", "link", "meta", "param", "source", "track", "wbr",
    "html", "head", "body",
})  # fmt: skip
# A start tag closes an open element of its group near the top of the stack, as the parser's
# implied end tags do ("<li>a<li>b", "<td>1<td>2", "<p>x<p>y", "<h2>a<h3>b"), unless an
# element that fences the group off comes first ("<li><ul><li>" nests).
_SIBLING_GROUP = {
    "li": "li", "dt": "dd", "dd": "dd", "option": "option", "optgroup": "optgroup",
    "tr": "tr", "td": "td", "th": "td", "thead": "tbody", "tbody": "tbody", "tfoot": "tbody",
    "colgroup": "colgroup", "caption": "caption", "rb": "rb", "rt": "rb", "rtc": "rb",
    "rp": "rb", "h1": "h", "h2": "h", "h3": "h", "h4": "h", "h5": "h", "h6": "h",
}  # fmt: skip
_SCOPE = frozenset({"table", "template", "caption", "applet", "object", "marquee", "svg", "math"})
# The elements the tree builder calls "special": an end tag for an ordinary element (<span>,
# a custom one) that would have to pop one of them is ignored.
_SPECIAL = frozenset({
    "address", "applet", "area", "article", "aside", "base", "basefont", "bgsound",
    "blockquote", "body", "br", "button", "caption", "center", "col", "colgroup", "dd",
    "details", "dir", "div", "dl", "dt", "embed", "fieldset", "figcaption", "figure", "footer",
    "form", "frame", "frameset", "h1", "h2", "h3", "h4", "h5", "h6", "head", "header",
    "hgroup", "hr", "html", "iframe", "img", "input", "keygen", "li", "link", "listing",
    "main", "marquee", "menu", "meta", "nav", "noembed", "noframes", "noscript", "object",
    "ol", "p", "param", "plaintext", "pre", "script", "search", "section", "select", "source",
    "style", "summary", "table", "tbody", "td", "template", "textarea", "tfoot", "th",
    "thead", "title", "tr", "track", "ul", "wbr", "xmp", "svg", "math",
})  # fmt: skip
_ELEMENT_SCOPE = _SCOPE | {"html", "td", "th"}
_TABLE_SCOPE = frozenset({"html", "table", "template"})
# How far down the stack a start tag looks for an open element of its group, and what stops
# it: <option> and headings only close the current node; <li>, <dd> and <dt> stop at any
# special element but address, div and p; <p> looks in "button scope"; table parts in table
# scope.
_SIBLING_REACH = {"option": 1, "optgroup": 1, "colgroup": 1, "rb": 1, "h": 1}
_DEFAULT_REACH = 4
_FENCES = {
    "li": _SPECIAL - {"address", "div", "p"},
    "dd": _SPECIAL - {"address", "div", "p"},
    "tr": _TABLE_SCOPE,
    "td": _TABLE_SCOPE | {"tr"},
    "tbody": _TABLE_SCOPE,
    "caption": _TABLE_SCOPE,
}
# Start tags that first close an open <p> (in "button scope"), as the builder does.
_CLOSES_P = frozenset({
    "address", "article", "aside", "blockquote", "center", "details", "dialog", "dir", "div",
    "dl", "fieldset", "figcaption", "figure", "footer", "form", "header", "hgroup", "main",
    "menu", "nav", "ol", "p", "search", "section", "summary", "ul", "h1", "h2", "h3", "h4",
    "h5", "h6", "pre", "listing", "li", "dd", "dt", "plaintext", "table", "hr", "xmp",
})  # fmt: skip
# What stops an end tag from reaching its element (it is then ignored), by element; for an
# element not listed, _ELEMENT_SCOPE if it is special or a formatting one, else _SPECIAL.
_END_FENCE = {
    "p": _ELEMENT_SCOPE | {"button"},
    "li": _ELEMENT_SCOPE | {"ol", "ul"},
    **dict.fromkeys(("table", "tbody", "thead", "tfoot", "tr", "td", "th", "colgroup"),
                    _TABLE_SCOPE),
}
# The list of active formatting elements this model scans for free (a real page's is short).
_FREE_SCAN = 8
# How a tag moves the running depth count: +1 or -1, or 0 for the elements that cannot nest
# without a counted parent.
_HTML_ELEMENTS = (
    "a", "abbr", "acronym", "address", "applet", "area", "article", "aside", "audio", "b",
    "base", "basefont", "bdi", "bdo", "bgsound", "big", "blink", "blockquote", "body", "br",
    "button", "canvas", "caption", "center", "cite", "code", "col", "colgroup", "data",
    "datalist", "dd", "del", "details", "dfn", "dialog", "dir", "div", "dl", "dt", "em",
    "embed", "fieldset", "figcaption", "figure", "font", "footer", "form", "frame",
    "frameset", "h1", "h2", "h3", "h4", "h5", "h6", "head", "header", "hgroup", "hr",
    "html", "i", "iframe", "image", "img", "input", "ins", "isindex", "kbd", "keygen",
    "label", "legend", "li", "link", "listing", "main", "map", "mark", "marquee", "math",
    "menu", "meta", "meter", "nav", "nobr", "noembed", "noframes", "noscript", "object",
    "ol", "optgroup", "option", "output", "p", "param", "picture", "plaintext", "pre",
    "progress", "q", "rb", "rp", "rt", "rtc", "ruby", "s", "samp", "script", "search",
    "section", "select", "slot", "small", "source", "span", "strike", "strong", "style",
    "sub", "summary", "sup", "svg", "table", "tbody", "td", "template", "textarea", "tfoot",
    "th", "thead", "time", "title", "tr", "track", "tt", "u", "ul", "var", "video", "wbr",
    "xmp",
)  # fmt: skip
_DEPTH_STEP = {
    **{name: 1 for name in _HTML_ELEMENTS},
    **{f"/{name}": -1 for name in _HTML_ELEMENTS},
    **{name: 0 for name in ("", *_VOID, *_SIBLING_GROUP)},
    **{f"/{name}": 0 for name in (*_VOID, *_SIBLING_GROUP)},
}
# The formatting elements the parser re-creates, and the elements that fence them off.
_FORMATTING = frozenset(
    {"a", "b", "big", "code", "em", "font", "i", "nobr", "s", "small", "strike", "strong", "tt", "u"}
)
_FORMATTING_STEP = {name: 1 for name in _FORMATTING} | {f"/{name}": -1 for name in _FORMATTING}
_MARKERS = frozenset({"applet", "caption", "marquee", "object", "td", "template", "th"})


def _too_complex(what: str, limit: int) -> TooComplex:
    return TooComplex(
        f"HTML has {what}, over the limit of {limit:,}: too complex to parse in bounded time"
    )


def _too_deep() -> TooLarge:
    return TooLarge(
        f"HTML nests elements more than {_MAX_DEPTH:,} deep: too deep to parse in bounded time"
    )


def _highest(steps: Iterable[int]) -> int:
    """At least the highest value of a counter that starts at 0, moves by ``steps`` and never
    drops below 0 (exactly that when the running sum never goes below 0), in C."""
    sums = list(accumulate(steps, initial=0))
    return max(sums) - min(sums)


def _check_markup(markup: str) -> None:
    """Refuse markup that would cost Lexbor superlinear time or memory (see above)."""
    if len(markup) <= _SCAN_MIN_CHARS and markup.count("<") <= _SCAN_MIN_TAGS:
        return
    counts = markup_counts(markup, _DEPTH_STEP, _FORMATTING_STEP)
    if counts is not None and _ordinary(*counts):
        return
    # [text, raw-text name, name, attributes, text, ...]: columns are slices, all in C. A
    # comment's groups are None.
    parts = _MARKUP_TOKEN.split(markup)
    # Lower-cased in one call; two spaces between names let str.count find " name " (a name
    # holds no whitespace).
    names = "  ".join(filter(None, parts[2::4])).lower()
    tags = names.split()
    names = f" {names} "
    # Depth first, so that deep nesting is still reported as such (TooLarge). Unknown names
    # count +1 even as end tags: custom elements only make the bound looser.
    if _highest(filter(None, map(_DEPTH_STEP.get, tags, repeat(1)))) > _MAX_DEPTH:
        _simulate_tree(zip(parts[1::4], parts[2::4], parts[3::4], strict=True))
    if len(tags) > _MAX_TAGS:
        raise _too_complex(f"{len(tags):,} tags", _MAX_TAGS)
    # Each start tag or text may make a copy of every open formatting element (hence 2 x).
    formatting = _highest(filter(None, map(_FORMATTING_STEP.get, tags)))
    if len(tags) * (1 + 2 * formatting) > _MAX_TAGS:
        _simulate_tree(zip(parts[1::4], parts[2::4], parts[3::4], strict=True))
    options = names.count(" option ") + names.count(" optgroup ")
    if options > _MAX_OPTIONS:
        raise _too_complex(f"{options:,} <option>s", _MAX_OPTIONS)
    _check_attributes(list(filter(None, parts[3::4])))
    # A repeated <html> or <body> tag adds the attributes the first one lacks to its element.
    for merged in ("html", "body"):
        if names.count(f" {merged} ") > 1:
            rests = [
                rest for name, rest in zip(parts[2::4], parts[3::4], strict=True)
                if rest and name is not None and name.lower() == merged
            ]  # fmt: skip
            count = len(set(_ATTRIBUTE_NAME.findall(" ".join(rests).lower())))
            if count > _MAX_ATTRIBUTES:
                raise _too_complex(
                    f"{count:,} attributes on its <{merged}> tags, which make one element",
                    _MAX_ATTRIBUTES,
                )


def _ordinary(
    tags: int, depth: int, formatting: int, options: int, html_tags: int, html_attributes: int,
    body_tags: int, body_attributes: int, most_attributes: int, rests: int, rest_chars: int,
    separators: int, equals: int,
) -> bool:
    """Whether the compiled scan's counts (``agents.clean.scan.markup_counts``) clear every
    bound of the full check below without its second steps (the tree model, counting
    attribute names): the same tests on the same numbers, or on upper bounds of them."""
    joiners = max(rests - 1, 0)  # the spaces " ".join(rests) adds: separators too
    return (
        depth <= _MAX_DEPTH
        and tags * (1 + 2 * formatting) <= _MAX_TAGS
        and options <= _MAX_OPTIONS
        and most_attributes < _MAX_ATTRIBUTES
        and (rest_chars + joiners <= 2 * _MAX_ATTRIBUTE_NAMES
             or rests + separators + joiners + equals <= _MAX_ATTRIBUTE_NAMES)
        and (html_tags <= 1 or html_attributes + html_tags <= _MAX_ATTRIBUTES)
        and (body_tags <= 1 or body_attributes + body_tags <= _MAX_ATTRIBUTES)
    )


def _most_attributes(text: str) -> int:
    """At least the number of attributes in ``text`` (attribute parts of tags): each one but
    a tag's first follows whitespace, "/" or a quoted value (which follows an "="). Counted
    on the UTF-8 bytes, where these ASCII characters cannot be part of another character."""
    return len(text.encode().translate(None, _NOT_ATTRIBUTE_SEPARATOR)) + text.count("=")


def _check_attributes(rests: list[str]) -> None:
    if not rests:
        return
    longest = 2 * _MAX_ATTRIBUTES  # each attribute takes 2 characters or more
    if max(map(len, rests)) > longest:
        for rest in [rest for rest in rests if len(rest) > longest]:
            if _most_attributes(rest) >= _MAX_ATTRIBUTES:
                count = len(_ATTRIBUTE_NAME.findall(rest))
                if count > _MAX_ATTRIBUTES:
                    raise _too_complex(f"a tag with {count:,} attributes", _MAX_ATTRIBUTES)
    joined = " ".join(rests)
    if len(joined) > 2 * _MAX_ATTRIBUTE_NAMES and (
        len(rests) + _most_attributes(joined) > _MAX_ATTRIBUTE_NAMES
    ):
        names = len(set(_ATTRIBUTE_NAME.findall(joined)))
        if names > _MAX_ATTRIBUTE_NAMES:
            raise _too_complex(f"{names:,} distinct attribute names", _MAX_ATTRIBUTE_NAMES)


def _simulate_tree(tokens: Iterable[tuple[str | None, str | None, str | None]]) -> None:
    """Follow the stack of open elements and the list of active formatting elements roughly
    as the tree builder does, and count the work: tags, the formatting elements the builder
    re-creates (those popped but still active, at every start tag) and, past a few, the list
    entries this model scans. Errs towards overestimating depth and work; its own cost is
    bounded by the work it counts."""
    stack: list[tuple[str, list[Any] | None]] = []  # (name, its entry in ``active``)
    open_count: dict[str, int] = {}
    active: list[list[Any] | None] = []  # [name, attributes, on the stack?]; None: a marker
    markers: list[int] = []  # the markers' positions in ``active``
    work = 0

    def push(name: str, entry: list[Any] | None) -> None:
        stack.append((name, entry))
        open_count[name] = open_count.get(name, 0) + 1
        if len(stack) > _MAX_DEPTH:
            raise _too_deep()

    def pop_to(name: str) -> None:
        while True:
            top, entry = stack.pop()
            open_count[top] -= 1
            if entry is not None:
                entry[2] = False  # popped, but still active until its own end tag
            if top in _MARKERS and markers:
                del active[markers.pop() :]
            if top == name:
                return

    def reconstruct(first: int) -> int:
        """Re-create the active formatting elements that were popped (the run of them at the
        end of the list), as the builder does before inline content; return how many."""
        index = len(active)
        while index > first and (entry := active[index - 1]) is not None and not entry[2]:
            index -= 1
        for entry in active[index:]:
            assert entry is not None
            entry[2] = True
            push(entry[0], entry)
        return len(active) - index

    def close(name: str) -> None:
        """An end tag: pop to its element, unless a fence comes first (the tag is then
        ignored). A formatting element with a special one above it (the adoption agency's
        "furthest block") and a <form> leave the stack but what is above them stays open.
        Walks that pop nothing are counted as work."""
        nonlocal work
        if not open_count.get(name):
            return
        fence = _END_FENCE.get(name) or (
            _ELEMENT_SCOPE if name in _SPECIAL or name in _FORMATTING else _SPECIAL
        )
        special_above = False
        for index in range(len(stack) - 1, -1, -1):
            top = stack[index][0]
            if top == name:
                if name == "form" or (special_above and name in _FORMATTING):
                    work += len(stack) - index
                    del stack[index]
                    open_count[name] -= 1
                else:
                    pop_to(name)
                return
            if top in fence:
                work += len(stack) - index
                return
            special_above = special_above or top in _SPECIAL

    def last_active(name: str, first: int) -> int | None:
        for index in range(len(active) - 1, first - 1, -1):
            entry = active[index]
            if entry is not None and entry[0] == name:
                return index
        return None

    for raw_name, name, rest in tokens:
        if name is None or rest is None:
            continue  # a comment
        name = name.lower()
        slash = name[0] == "/"
        if slash:
            name = name[1:]
        first = markers[-1] + 1 if markers else 0
        work += 1
        if name in _FORMATTING:
            work += max(0, len(active) - first - _FREE_SCAN)
        if work > _MAX_TAGS:
            raise _too_complex(
                f"more than {_MAX_TAGS:,} tags and copies of unclosed formatting elements",
                _MAX_TAGS,
            )
        if slash:
            index = last_active(name, first) if name in _FORMATTING else None
            if index is not None:  # the adoption agency, roughly
                entry = active.pop(index)
                if entry is not None and entry[2]:
                    close(name)
            else:
                close(name)
            continue
        if name in _CLOSES_P:
            close("p")
        if raw_name or name in _VOID:
            work += reconstruct(first)
            continue
        if (rest.endswith("/") and (open_count.get("svg") or open_count.get("math"))
                and name not in _FORMATTING and name not in _MARKERS):  # fmt: skip
            continue  # self-closing, in SVG or MathML only
        group = _SIBLING_GROUP.get(name)
        if group is not None:
            fence = _FENCES.get(group, _SPECIAL)
            reach = _SIBLING_REACH.get(group, _DEFAULT_REACH)
            for index in range(len(stack) - 1, max(len(stack) - reach, 0) - 1, -1):
                if _SIBLING_GROUP.get(stack[index][0]) == group:
                    pop_to(stack[index][0])
                    break
                if stack[index][0] in fence:
                    break
        if name not in _FORMATTING:
            # A block or other element: its content (text or inline tags) is where the builder
            # re-creates popped formatting elements, inside it.
            if name in _MARKERS:
                markers.append(len(active))
                active.append(None)
            push(name, None)
            if name == "table":
                push("tbody", None)  # the builder adds it (and a <tr>) when a row comes
            work += reconstruct(markers[-1] + 1 if markers else 0)
            continue
        work += reconstruct(first)
        if name == "a":  # a new <a> ends the one still active
            index = last_active("a", first)
            entry = active.pop(index) if index is not None else None
            if entry is not None and entry[2]:
                close("a")
        else:  # "Noah's Ark": at most three identical entries
            key = rest.strip()
            same = [i for i in range(first, len(active))
                    if (e := active[i]) is not None and e[0] == name and e[1] == key]  # fmt: skip
            if len(same) >= 3:
                del active[same[0]]
        entry = [name, rest.strip(), True]
        active.append(entry)
        push(name, entry)


def parse_html(markup: str) -> Parsed:
    """Metadata and body paragraphs of an HTML page or fragment."""
    _check_markup(markup)
    tree = LexborHTMLParser(markup)
    meta = _meta_tags(tree)
    linked = _linked_data(tree)
    canonical = _within(_html_url(tree, meta, linked), MAX_URL_CHARS)
    parsed = Parsed(
        title=_html_title(tree, meta, linked),
        source=_within(meta.get("og:site_name"), MAX_SOURCE_CHARS),
        url=canonical,
        published_at=_html_date(tree, meta, linked, canonical),
        language=_within(_html_lang(tree), MAX_LANGUAGE_CHARS),
        authors=_html_authors(tree, meta, linked),
        canonical_url=canonical,
    )
    tree.strip_tags(_DROP_TAGS)
    for node in tree.css(_JUNK_CANDIDATES):
        if node.tag not in _NEVER_DROP and _is_junk(node):
            node.decompose()
    container = _body_container(tree)
    parsed.body = _main_text(container) if container is not None else ""
    return parsed


def _meta_tags(tree: LexborHTMLParser) -> dict[str, str]:
    found: dict[str, str] = {}
    for node in tree.css("meta[content]"):
        attrs = node.attributes
        key = attrs.get("property") or attrs.get("name") or attrs.get("itemprop")
        content = attrs.get("content")
        if key and content and content.strip():
            found.setdefault(key.strip().lower(), content.strip())
    return found


def _node_text(tree: LexborHTMLParser, selector: str) -> str | None:
    node = tree.css_first(selector)
    if node is None:
        return None
    text = " ".join(node.text(deep=True).split())
    return text or None


def _html_title(tree: LexborHTMLParser, meta: dict[str, str], linked: dict[str, Any]) -> str | None:
    """The headline. The page's <h1> when <title> starts with it (then the rest of <title> is
    the site's name or section: "Headline | Yonhap News Agency", "Ein Albtraum - DER SPIEGEL
    52/2018"); else og:title or the linked data's headline (written for sharing, so without
    the suffix); else <title> without " | Site" when the site's name is known; else <h1>."""
    heading = _node_text(tree, "h1")
    title = _node_text(tree, "title")
    if heading and title and len(heading) >= _MIN_HEADLINE_CHARS and _starts_with_words(
            title, heading):
        return heading
    shared = meta.get("og:title") or meta.get("twitter:title") or _ld_text(linked, "headline")
    if shared:
        return shared
    site = meta.get("og:site_name")
    if title and site:
        for sep in _TITLE_SEPARATORS:
            if title.endswith(sep + site):
                return title[: -len(sep + site)]
    return title or heading


def _starts_with_words(text: str, start: str) -> bool:
    """``text`` begins with ``start`` and goes on, if at all, after a separator."""
    text, start = " ".join(text.split()).casefold(), " ".join(start.split()).casefold()
    if not text.startswith(start):
        return False
    rest = text[len(start):]
    return not rest or any(rest.startswith(sep) for sep in _TITLE_SEPARATORS)


def _html_url(tree: LexborHTMLParser, meta: dict[str, str], linked: dict[str, Any]) -> str | None:
    """The canonical URL: <link rel=canonical>, og:url, the linked data's url; a relative one
    is resolved against the next absolute one, and dropped if none is absolute."""
    node = tree.css_first("link[rel=canonical][href]")
    found = [
        (node.attributes.get("href") or "").strip() if node is not None else "",
        meta.get("og:url") or "",
        _ld_text(linked, "url") or "",
    ]
    found = [url for url in found if url]
    base = next((url for url in found if _is_absolute(url)), None)
    for url in found:
        if _is_absolute(url):
            return url
        if base is not None:
            return urljoin(base, url)
    return None


def _is_absolute(url: str) -> bool:
    return url.startswith(("http://", "https://"))


_MAX_TIME_ELEMENTS = 20
_MAX_AUTHORS = 10
_MAX_AUTHOR_CHARS = 100
_MAX_LD_SCRIPTS = 8
_MAX_LD_CHARS = 262_144
_MAX_LD_ITEMS = 64
_MIN_HEADLINE_CHARS = 8  # a shorter <h1> is more likely the site's logo than a headline
_TITLE_SEPARATORS = (" | ", " - ", " – ", " — ", " :: ", " · ")


def _html_date(tree: LexborHTMLParser, meta: dict[str, str], linked: dict[str, Any],
               url: str | None) -> str | None:
    """The publication date: the linked data's datePublished, then the <meta> keys, then the
    first <time datetime>s, then a date in the URL (/2019/08/20/ or 20190820, day only)."""
    value = _ld_text(linked, "datePublished")
    if value and (parsed := parse_date(value)):
        return parsed
    for key in _META_DATE_KEYS:
        value = meta.get(key)
        if value and (parsed := parse_date(value)):
            return parsed
    # The first few only: a page's own date comes early, and each miss costs ~10 µs.
    for node in tree.css("time[datetime]")[:_MAX_TIME_ELEMENTS]:
        value = node.attributes.get("datetime")
        if value and (parsed := parse_date(value)):
            return parsed
    return _url_date(url) if url else None


_URL_DATE = re.compile(r"/((?:19|20)\d\d)[/-]?(0[1-9]|1[0-2])[/-]?(0[1-9]|[12]\d|3[01])(?:/|[^\d])")


def _url_date(url: str) -> str | None:
    match = _URL_DATE.search(url)
    if match is None:
        return None
    try:
        return datetime(int(match[1]), int(match[2]), int(match[3])).date().isoformat()
    except ValueError:  # 2019/02/30
        return None


def _html_authors(tree: LexborHTMLParser, meta: dict[str, str], linked: dict[str, Any]
                  ) -> list[str]:
    """The article's authors: the linked data's author names, else <meta name=author> (or
    article:author when it is a name, not a profile URL), else rel=author links."""
    names = _ld_names(linked.get("author"))
    if not names:
        value = meta.get("author") or meta.get("article:author") or ""
        names = [part for part in re.split(r"\s*(?:,|;|\band\b|&)\s*", value) if part]
    if not names:
        names = [node.text(deep=True, strip=True) for node in
                 tree.css("a[rel=author], [itemprop=author] [itemprop=name]")[:_MAX_AUTHORS]]
    out: list[str] = []
    for name in names:
        name = " ".join(name.split())
        if name and not _is_absolute(name) and len(name) <= _MAX_AUTHOR_CHARS and name not in out:
            out.append(name)
    return out[:_MAX_AUTHORS]


def _ld_names(value: Any) -> list[str]:
    """Names in a linked-data author value: a string, a Person/Organization, or a list."""
    items = value if isinstance(value, list) else [value]
    names = []
    for item in items[:_MAX_AUTHORS]:
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            names.append(item["name"])
    return names


def _linked_data(tree: LexborHTMLParser) -> dict[str, Any]:
    """The page's schema.org article in JSON-LD (``NewsArticle``, ``Article``...; in a list or
    an ``@graph`` too), or {}. Bounded: the first few scripts, each up to 256 KB."""
    for node in tree.css('script[type="application/ld+json"]')[:_MAX_LD_SCRIPTS]:
        text = node.text(deep=True)
        if not text or len(text) > _MAX_LD_CHARS:
            continue
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            continue
        found = _ld_article(data)
        if found:
            return found
    return {}


def _ld_article(data: Any) -> dict[str, Any]:
    candidates = data if isinstance(data, list) else [data]
    if isinstance(data, dict) and isinstance(data.get("@graph"), list):
        candidates = data["@graph"]
    for item in candidates[:_MAX_LD_ITEMS]:
        if isinstance(item, dict):
            kind = item.get("@type")
            kinds = kind if isinstance(kind, list) else [kind]
            if any(isinstance(k, str) and k.endswith(("Article", "BlogPosting", "Report"))
                   for k in kinds):
                return item
    return {}


def _ld_text(linked: dict[str, Any], key: str) -> str | None:
    value = linked.get(key)
    if isinstance(value, dict):  # mainEntityOfPage-like {"@id": url}
        value = value.get("@id")
    return value.strip() if isinstance(value, str) and value.strip() else None


def _html_lang(tree: LexborHTMLParser) -> str | None:
    node = tree.css_first("html[lang]")
    return node.attributes.get("lang") if node is not None else None


def _is_junk(node: LexborNode) -> bool:
    attrs = node.attributes
    marks = f"{attrs.get('class') or ''} {attrs.get('id') or ''}".lower()
    return _JUNK_ATTR.search(marks) is not None


def _text_len(node: LexborNode) -> int:
    return len(node.text(deep=True, strip=True))


def _body_container(tree: LexborHTMLParser) -> LexborNode | None:
    """The element holding the article: an explicit articleBody, else the longest
    <article> (pages list teasers as articles too), else <main>, else <body>."""
    node = tree.css_first("[itemprop=articleBody]")
    if node is not None:
        return node
    articles = tree.css("article")
    if len(articles) > 1:
        # An <article> inside another is no longer than it and comes after it: measure only
        # the outermost (1,000 nested ones read the text 1,000 times).
        nested = {node.mem_id for node in tree.css("article article")}
        articles = [node for node in articles if node.mem_id not in nested]
    if articles:
        return max(articles, key=_text_len)
    return tree.css_first("main") or tree.body or tree.root


def _main_text(container: LexborNode) -> str:
    """The article's text inside ``container``. Where the page writes its prose in <p>
    elements (nearly every news page), the prose is read from the smallest element that holds
    nearly all of it, and only from its paragraph elements: menus, teaser lists, gallery
    captions, rating widgets and sidebars sit beside the paragraphs, not in them. A page that
    writes its paragraphs as <div>s holding no other block is read the same way from those.
    Otherwise every block's text, as it stands."""
    unlinked = _unlinked_chars(container)
    for with_divs in (False, True):
        prose = _prose_paragraphs(container, with_divs)
        if sum(size for _, size in prose) < _MIN_PROSE_CHARS or len(prose) > _MAX_PARAGRAPHS:
            continue
        divs = {_signature(node) for node, _ in prose if node.tag == "div"}
        text = _paragraph_text(_prose_root(prose, container), divs)
        # Some pages keep <p> for sidebar blurbs and write the article in <div>s: what is read
        # must be a good share of the page's text outside links, or it is not the article.
        if len(text) >= _MIN_PROSE_SHARE * unlinked:
            return text
    return _block_text(container)


def _unlinked_chars(node: LexborNode) -> int:
    return len(node.text(deep=True, strip=True)) - _link_chars(node)


def _link_chars(node: LexborNode) -> int:
    return sum(len(link.text(deep=True, strip=True)) for link in node.css("a"))


def _prose_paragraphs(container: LexborNode, with_divs: bool) -> list[tuple[LexborNode, int]]:
    """The paragraphs that read as prose, long enough and not mostly link text: the <p>s, or
    (``with_divs``, for pages that write paragraphs as <div class="...">) the <div>s holding
    no other block."""
    if with_divs:
        holders = _block_holders(container)
        nodes = [node for node in container.css("div") if node.mem_id not in holders]
    else:
        nodes = container.css("p")
    return [(node, size) for node in nodes if (size := _prose_size(node))]


def _signature(node: LexborNode) -> tuple[str, str]:
    return node.tag or "", node.attributes.get("class") or ""


def _block_holders(root: LexborNode) -> set[int]:
    """The elements under ``root`` with a block child. A node's css() matches the node itself,
    so "holds a block" is asked the other way round (one pass in C, a read per block)."""
    return {node.parent.mem_id for node in root.css(_INNER_BLOCKS) if node.parent is not None}


def _prose_size(node: LexborNode) -> int:
    """The length of ``node``'s text when it reads as prose (long enough, not mostly link
    text), else 0."""
    size = len(node.text(deep=True, strip=True))
    return size if size >= _PROSE_CHARS and _link_chars(node) <= _PROSE_LINK_SHARE * size else 0


def _prose_root(prose: list[tuple[LexborNode, int]], container: LexborNode) -> LexborNode:
    """The deepest element under ``container`` holding ``_PROSE_COVER`` of the prose's
    characters (a few stray paragraphs elsewhere, a pull quote in a sidebar, do not widen
    it to the whole page)."""
    held: dict[int, int] = {}
    depth: dict[int, int] = {}
    nodes: dict[int, LexborNode] = {}
    for paragraph, size in prose:
        chain: list[LexborNode] = []
        node: LexborNode | None = paragraph.parent
        while node is not None and len(chain) < _MAX_WALK:
            chain.append(node)
            if node.mem_id == container.mem_id:
                break
            node = node.parent
        for height, node in enumerate(chain):
            key = node.mem_id
            held[key] = held.get(key, 0) + size
            depth[key] = len(chain) - height
            nodes[key] = node
    needed = _PROSE_COVER * sum(size for _, size in prose)
    best = max((key for key, size in held.items() if size >= needed), key=depth.__getitem__,
               default=None)
    if best is None:
        return container
    root = nodes[best]
    # Widen to the parent when what the parent adds is prose itself (a standfirst or lede just
    # above the body's element), not a sidebar's or a teaser column's text.
    root_unlinked: int | None = None
    for _ in range(_MAX_WIDEN):
        parent = root.parent
        if parent is None or parent.mem_id not in held or root.mem_id == container.mem_id:
            break
        added = held[parent.mem_id] - held[root.mem_id]
        if not added:
            break  # the parent adds no prose: nothing to gain, and text to lose precision on
        if root_unlinked is None:
            root_unlinked = _unlinked_chars(root)
        parent_unlinked = _unlinked_chars(parent)
        if parent_unlinked - root_unlinked > 1.5 * added + 200:
            break
        root, root_unlinked = parent, parent_unlinked
    return root


def _paragraph_text(root: LexborNode, divs: set[tuple[str, str]]) -> str:
    """One line per paragraph element under ``root``, in page order: a nested one is read with
    the element holding it, one inside a figure, aside, nav... is skipped, and so is one that
    is mostly link text (a teaser or a list of links). ``divs``: the (tag, class) of the <div>s
    that held prose; every <div> like them is a paragraph too, however short."""
    lines: list[str] = []
    taken: set[int] = set()
    selector = _PARAGRAPH_ELEMENTS + (",div" if divs else "")
    holders = _block_holders(root) if divs else set()
    for node in root.css(selector)[: 2 * _MAX_PARAGRAPHS]:
        if node.tag == "div" and _signature(node) not in divs and (
                node.mem_id in holders or not _prose_size(node)):
            continue
        above, steps = node.parent, 0
        while above is not None and above.mem_id != root.mem_id and steps < _MAX_WALK:
            if above.mem_id in taken or above.tag in _NOT_PROSE:
                break
            above, steps = above.parent, steps + 1
        else:
            text = " ".join(node.text(deep=True).split())
            if text and _link_chars(node) <= _PARAGRAPH_LINK_SHARE * len(text):
                taken.add(node.mem_id)
                lines.append(text)
    return "\n".join(lines)


def _block_text(container: LexborNode) -> str:
    for node in container.css(_BLOCKS):
        node.insert_before(_SEP)
        node.insert_after(_SEP)
    text = container.text(deep=True)
    # Source newlines are plain whitespace in HTML: collapse them, then make blocks lines.
    return "\n".join(" ".join(part.split()) for part in text.split(_SEP))


# --------------------------------------------------------------------------- dates


def parse_date(value: str) -> str | None:
    """ISO-8601 form of a date or datetime string, UTC when it carries an offset;
    ``None`` when it cannot be read (a bad date never rejects an article)."""
    value = value.strip()
    if not value or len(value) > MAX_DATE_CHARS:
        return None
    try:
        if len(value) == 10:
            return datetime.strptime(value, "%Y-%m-%d").date().isoformat()
        return _iso_datetime(datetime.fromisoformat(value))
    except (ValueError, OverflowError):  # Overflow: an offset pushing year 1 or 9999 out
        pass
    try:  # RSS feeds use RFC 2822: "Fri, 31 May 2024 10:00:00 GMT"
        return _iso_datetime(parsedate_to_datetime(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _iso_datetime(moment: datetime) -> str:
    if moment.tzinfo is None:
        return moment.isoformat()
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def _epoch_to_iso(seconds: float) -> str | None:
    if seconds > 1e11:  # milliseconds, as Java producers and many feeds send
        seconds /= 1000.0
    try:
        return _iso_datetime(datetime.fromtimestamp(seconds, UTC))
    except (OverflowError, OSError, ValueError):
        return None


# --------------------------------------------------------------------------- step 3: unicode

# A lead byte of a UTF-8 sequence (Â..ô) followed by a continuation byte, both as seen when
# UTF-8 is decoded as Latin-1 or cp1252: "Ã©" for "é", "â€œ" for "“". Clean text almost never
# has these pairs, so it skips ftfy entirely.
_MOJIBAKE = re.compile(
    "[\u00c2-\u00f4][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6"
    "\u02dc\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]"
)
_FTFY_CONFIG = ftfy.TextFixerConfig(
    # Only repair encodings: curly quotes, full-width forms and entities are left alone so
    # repaired and untouched articles look alike.
    unescape_html=False,
    uncurl_quotes=False,
    fix_character_width=False,
    fix_latin_ligatures=False,
    # fix_unicode normalises after ftfy, once it has cut runs of combining marks: ftfy's own
    # NFC would meet the runs that repairing made, uncut.
    normalization=None,
)
# ftfy costs ~20 µs a line and up to ~25 µs a repaired sequence (1.5 µs a character
# otherwise): 1 MB of mojibake took 3 to 4 s. It repairs the text up to the first of these
# bounds, at a line's start; the rest keeps its mojibake. A long article has ~20,000
# characters and a few hundred broken sequences; the worst case costs ~0.15 s.
_MAX_REPAIR_CHARS = 60_000
_MAX_REPAIR_LINES = 2_000
_MAX_REPAIR_SEQUENCES = 2_000
# Normalising reorders each run of combining marks by insertion sort: 20,000 alternating
# marks took 0.4 s, 60,000 five. Runs longer than the Stream-Safe Text Format's 30 (UAX #15)
# are cut to 30; no writing system needs more, only "Zalgo" text has them.
_MAX_NONSTARTERS = 30
# Removed outright: invisible and meaningless inside words. ZWJ/ZWNJ stay: they are spelling
# in Persian, Indic scripts and emoji. Lone surrogates cannot be encoded back to UTF-8.
_INVISIBLE = re.compile("[\u0080-\u009f\u00ad\u200b\u2060\ufeff\ud800-\udfff]")
# Replaced by a space: stray C0 controls would otherwise glue words together.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _repair_mojibake(text: str) -> str:
    """ftfy over the text up to the first of the _MAX_REPAIR_* bounds."""
    end = len(text)
    if end > _MAX_REPAIR_CHARS:
        end = text.rfind("\n", 0, _MAX_REPAIR_CHARS) + 1 or _MAX_REPAIR_CHARS
    if text.count("\n", 0, end) > _MAX_REPAIR_LINES:
        newlines = re.finditer("\n", text)
        end = next(islice(newlines, _MAX_REPAIR_LINES - 1, None)).end()
    past = next(islice(_MOJIBAKE.finditer(text, 0, end), _MAX_REPAIR_SEQUENCES, None), None)
    if past is not None:
        end = text.rfind("\n", 0, past.start()) + 1 or past.start()
    # ftfy fixes each line on its own; lines without a suspect sequence are left as they are
    # (most of an article: one "é»" in Spanish prose made ftfy cost 1 ms over a whole body).
    lines = text[:end].split("\n")
    for number, line in enumerate(lines):
        if _MOJIBAKE.search(line):
            lines[number] = ftfy.fix_text(line, _FTFY_CONFIG)
    fixed = "\n".join(lines)
    return fixed + text[end:] if end < len(text) else fixed


@functools.cache
def _nonstarter_run() -> re.Pattern[str]:
    """Runs of more than _MAX_NONSTARTERS characters that may be non-starters (canonical
    combining class > 0): those of the BMP (found once, ~10 ms) or any astral character
    (a class of ranges past the BMP would make the regex ten times slower)."""
    ranges: list[list[int]] = []
    for code in range(0x300, 0x10000):
        if unicodedata.combining(chr(code)):
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1][1] = code
            else:
                ranges.append([code, code])
    chars = "".join(f"{chr(first)}-{chr(last)}" for first, last in ranges)
    return re.compile(f"[{chars}\U00010000-\U0010ffff]{{{_MAX_NONSTARTERS + 1},}}")


def _cut_run(match: re.Match[str]) -> str:
    run = match.group()
    if max(run) < "\U00010000":  # all non-starters
        return run[:_MAX_NONSTARTERS]
    kept: list[str] = []
    count = 0
    for char in run:
        count = count + 1 if unicodedata.combining(char) else 0
        if count <= _MAX_NONSTARTERS:
            kept.append(char)
    return "".join(kept)


def _normalize(text: str) -> str:
    """NFC, with runs of combining marks cut to _MAX_NONSTARTERS first."""
    return unicodedata.normalize("NFC", _nonstarter_run().sub(_cut_run, text))


def fix_unicode(text: str) -> str:
    """Repair mojibake, normalise to NFC, drop control and zero-width characters.
    Non-breaking and other exotic spaces are folded later, with all whitespace."""
    if not text.isascii():
        if _MOJIBAKE.search(text):
            text = _repair_mojibake(text)
        if not unicodedata.is_normalized("NFC", text):
            text = _normalize(text)
        if _INVISIBLE.search(text):
            text = _INVISIBLE.sub("", text)
    if _CONTROL.search(text):
        text = _CONTROL.sub(" ", text)
    return text


def one_line(text: str) -> str:
    """Unicode-fixed text on one line with single spaces (titles, sources)."""
    return " ".join(fix_unicode(text).split())


# --------------------------------------------------------------------------- step 4: boilerplate


class Action(Enum):
    DROP = "drop"  # remove this line only
    CUT = "cut"  # footer marker: remove it and everything after it (in the second half)


@dataclass(frozen=True, slots=True)
class BoilerplateRule:
    """A line-level pattern, matched case-insensitively at the start of a stripped line."""

    name: str
    pattern: str
    action: Action
    why: str


# Drop rules only apply to lines up to this length: boilerplate is short, and a long line
# that happens to start like one ("Related: the talks...") is more likely prose.
_MAX_DROP_CHARS = 300

#: The boilerplate table, from data/boilerplate.txt (one rule a line: name, action, pattern,
#: why, tab-separated). Each line is matched against all rules at once (one combined regex,
#: ~1 µs a line); where two rules could match, the first listed wins.
BOILERPLATE_RULES: tuple[BoilerplateRule, ...] = tuple(
    BoilerplateRule(name, pattern, Action(action), why)
    for name, action, pattern, why in (
        line.split("\t") for line in load_lines("agents.clean", "boilerplate")
    )
)

_RULES_RE = re.compile(
    "|".join(f"(?P<r{i}>{rule.pattern})" for i, rule in enumerate(BOILERPLATE_RULES)),
    re.IGNORECASE,
)
# The cut rules alone, for lines longer than _MAX_DROP_CHARS (most body paragraphs): no drop
# rule applies to them, and the drop rules' regex is the costly part (".{0,150}\ball rights
# reserved" backtracks over 150 characters). Cut rules are listed first, so a long line gets
# the same rule as from the whole table.
_CUT_RULES_RE = re.compile(
    "|".join(
        f"(?P<r{i}>{rule.pattern})"
        for i, rule in enumerate(BOILERPLATE_RULES)
        if rule.action is Action.CUT
    ),
    re.IGNORECASE,
)
_FIRST_DROP_RULE = min(i for i, rule in enumerate(BOILERPLATE_RULES) if rule.action is Action.DROP)
assert all(rule.action is Action.CUT for rule in BOILERPLATE_RULES[:_FIRST_DROP_RULE]) and all(
    rule.action is Action.DROP for rule in BOILERPLATE_RULES[_FIRST_DROP_RULE:]
), "_CUT_RULES_RE relies on the cut rules being listed before the drop rules"

# A byline on one of the first lines: "By Jane Doe", "By Jane Doe | Reuters",
# "By JANE DOE and John Roe, Associated Press". Every word capitalised, so prose such as
# "By Monday, prices had fallen" is not taken for one.
_NAME = r"[A-Z0-9][\w.'’-]*(?:\s+(?:[A-Z0-9][\w.'’-]*|de|van|von|der|da|del|la|le|bin|al))*"
# Separators never overlap name characters, so the regex cannot backtrack exponentially.
_BYLINE = re.compile(rf"By\s+{_NAME}(?:(?:\s*[,|/&–—]\s*|\s+and\s+|\s+-\s+){_NAME})*\s*$")
_BYLINE_LINES = 2
_MAX_BYLINE_CHARS = 120


def _rule_for(line: str) -> BoilerplateRule | None:
    match = (_RULES_RE if len(line) <= _MAX_DROP_CHARS else _CUT_RULES_RE).match(line)
    if match is None or match.lastgroup is None:
        return None
    return BOILERPLATE_RULES[int(match.lastgroup[1:])]


def strip_boilerplate(lines: list[str], max_chars: int | None = None) -> list[str]:
    """Remove boilerplate lines; a footer marker in the second half cuts the rest. With
    ``max_chars``, stop once the kept lines, joined by blank lines, reach that length."""
    kept: list[str] = []
    size = -2  # of the kept lines joined by "\n\n"
    half = len(lines) // 2
    for index, line in enumerate(lines):
        if (
            index < _BYLINE_LINES
            and len(line) <= _MAX_BYLINE_CHARS
            and _BYLINE.match(line) is not None
        ):
            continue
        rule = _rule_for(line)
        if rule is None:
            kept.append(line)
            if max_chars is not None:
                size += len(line) + 2
                if size >= max_chars:
                    break  # the rest would be cut anyway
        elif rule.action is Action.CUT and index >= half:
            break
    return kept


def body_paragraphs(body: str, title: str, max_chars: int) -> str:
    """The cleaned body: paragraphs separated by a blank line, at most ``max_chars``."""
    lines = [" ".join(line.split()) for line in fix_unicode(body).splitlines()]
    lines = [line for line in lines if line]
    # HTML repeats the headline as the article's <h1>: not body text, unless it is all
    # the body there is (some corpora store the headline sentence as the text).
    if len(lines) > 1 and title and lines[0].casefold() == title.casefold():
        lines = lines[1:]
    # Only a body longer than max_chars can stop early. The joined lines are at most 9 times
    # the raw body (NFC triples at most; a blank line per character), a cheap first test.
    long = 9 * len(body) > max_chars and sum(map(len, lines)) + 2 * len(lines) > max_chars
    text = "\n\n".join(strip_boilerplate(lines, max_chars if long else None))
    if len(text) > max_chars:
        text = text[:max_chars].rstrip()
    return text


# --------------------------------------------------------------------------- step 5: metadata

_SENTENCE_END = re.compile(r"[.!?…](?=\s|$)")


def _cut_words(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:-–—")


def fallback_title(body: str) -> str:
    """The body's first sentence, cut at a word boundary: a title for untitled input."""
    first = body.split("\n", 1)[0]
    end = _SENTENCE_END.search(first)
    sentence = first[: end.end()] if end else first
    return _cut_words(sentence, FALLBACK_TITLE_CHARS)


_TRACKING_PARAMS = frozenset({"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid"})


def _is_tracking(piece: str) -> bool:
    name = piece.split("=", 1)[0].lower()
    return name.startswith("utm_") or name in _TRACKING_PARAMS


def canonical_url(url: str) -> str | None:
    """Scheme and host lower-cased, fragment and tracking parameters (utm_*, fbclid...)
    removed, so the same article shared with different tags gets the same id."""
    url = url.strip()
    if not url:
        return None
    try:
        parts = urlsplit(url)
        # Filter the raw "k=v" pieces: re-encoding them would alter the URL ("?123" -> "?123=").
        query = "&".join(
            piece for piece in parts.query.split("&") if piece and not _is_tracking(piece)
        )
        return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path, query, ""))
    except ValueError:  # e.g. "http://[::1" : keep it, minus whitespace
        return url


def url_host(url: str | None) -> str | None:
    if not url:
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    if not host or len(host) > _MAX_HOST_CHARS:
        return None
    return host[4:] if host.startswith("www.") else host


def article_id(
    payload_id: str | None, key: bytes | None, url: str | None, source: str | None,
    title: str, body: str,
) -> str:  # fmt: skip
    """Deterministic id: payload id, else Kafka key, else canonical URL, else content.
    A key used as the id is held to ``MAX_ID_CHARS`` like the payload's id."""
    if payload_id and payload_id.strip():
        return _checked_id("field 'id'", payload_id.strip())
    if key:
        decoded = key.decode("utf-8", errors="replace").strip()
        if decoded:
            _check_length("the message key (the article id, as the payload has none)",
                          decoded, MAX_ID_CHARS)
            return _checked_id("the message key (the article id)", decoded)
    if url:
        return stable_id("url", url)
    return stable_id("content", source or "", title, body)


# An id becomes a Kafka key and a label in logs and alerts downstream: a NUL or newline in
# it breaks consumers that treat keys as text.
_ID_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _checked_id(what: str, value: str) -> str:
    bad = _ID_FORBIDDEN.search(value)
    if bad is not None:
        raise BadId(f"{what} contains U+{ord(bad.group()):04X} at character {bad.start()}; "
                    "an id must be printable text")
    return value


def _checked_language(declared: str | None, title: str, body: str) -> str | None:
    """The declared language (a JSON field, <html lang>) unless detection on a body long
    enough to be sure says otherwise: site templates declare the site's language whatever
    the article's ("lang=en" on a Spanish wire story)."""
    tag = _language_tag(declared)
    detected = detect_language(title, body)
    if tag and detected and detected != tag and len(body) < _SURE_LANGUAGE_CHARS:
        return tag
    return detected or tag


def _language_tag(value: str | None) -> str | None:
    """"en-GB", "EN_us", "en" -> "en"; junk -> None."""
    if not value:
        return None
    primary = re.split(r"[-_\s]", value.strip(), maxsplit=1)[0].lower()
    return primary if len(primary) == 2 and primary.isascii() and primary.isalpha() else None


# --------------------------------------------------------------------------- language

# Enough text for a confident guess; shorter input gives None rather than a coin toss.
_MIN_LANGUAGE_CHARS = 20
# Detection reads the title and this much body: accuracy is flat beyond it, cost is linear.
_LANGUAGE_SAMPLE_CHARS = 500
# Detection overrules a declared language only on a body at least this long.
_SURE_LANGUAGE_CHARS = 400
# CLD2 still speaks some pre-2000 codes.
_CLD2_CODES = {"iw": "he", "in": "id", "ji": "yi", "jw": "jv", "zh-hant": "zh"}

_detector: Callable[[str], str | None] | None = None


def _cld2_detector() -> Callable[[str], str | None]:
    import pycld2  # type: ignore[import-not-found]

    def detect(text: str) -> str | None:
        try:
            reliable, _, details = pycld2.detect(text)
        except pycld2.error:  # rejects a few code points it deems invalid; be unsure instead
            return None
        code = str(details[0][1]).lower()
        if not reliable or code == "un":
            return None
        code = _CLD2_CODES.get(code, code).split("-")[0]
        return code if len(code) == 2 else None

    return detect


# The fallback when pycld2 is absent: lingua is ~10x slower, so it gets a restricted set.
_LINGUA_LANGUAGES = load_lines("agents.clean", "lingua_languages")


def _lingua_detector(names: tuple[str, ...] = _LINGUA_LANGUAGES) -> Callable[[str], str | None]:
    """Loading the 30 models takes ~8 s on first use, once per process."""
    from lingua import Language, LanguageDetectorBuilder

    languages = [getattr(Language, name) for name in names]
    detector = (
        LanguageDetectorBuilder.from_languages(*languages)
        .with_minimum_relative_distance(0.1)
        .build()
    )

    def detect(text: str) -> str | None:
        found = detector.detect_language_of(text[:200])
        return found.iso_code_639_1.name.lower() if found is not None else None

    return detect


def _get_detector() -> Callable[[str], str | None]:
    global _detector
    if _detector is None:
        try:
            _detector = _cld2_detector()
        except ImportError:
            _detector = _lingua_detector()
    return _detector


def detect_language(title: str, body: str) -> str | None:
    """ISO 639-1 code of the text, or None when it is too short or the detector is unsure."""
    sample = f"{title}\n{body[:_LANGUAGE_SAMPLE_CHARS]}"
    # Counting letters only matters for short samples: long ones always have enough.
    short = len(sample) < 4 * _MIN_LANGUAGE_CHARS
    if short and sum(map(str.isalpha, sample)) < _MIN_LANGUAGE_CHARS:
        return None
    return _get_detector()(sample)


# --------------------------------------------------------------------------- entry point


def _strip_or_none(value: str | None) -> str | None:
    if value is None:
        return None
    value = one_line(value)
    return value or None


def clean(
    raw: bytes,
    *,
    key: bytes | None = None,
    received_at: float = 0.0,
    max_bytes: int = 1_048_576,
    max_body_chars: int = 200_000,
) -> Article:
    """Turn one raw ``news.raw`` message into a cleaned ``Article``.

    Raises a ``streams.errors.RejectedInput`` subclass for input that cannot be used.
    """
    parsed = parse_payload(decode_payload(raw, max_bytes))
    title = _cut_words(one_line((parsed.title or "")[:_TITLE_READ_CHARS]), MAX_TITLE_CHARS)
    body = body_paragraphs(parsed.body, title, max_body_chars)
    if not body:
        shown = f" (title: {title[:80]!r})" if title else ""
        raise EmptyBody(f"no body text left after removing markup and boilerplate{shown}")
    if not title:
        title = fallback_title(body)
    url = canonical_url(parsed.url) if parsed.url else None
    source = _strip_or_none(parsed.source) or url_host(url)
    canonical = canonical_url(parsed.canonical_url) if parsed.canonical_url else None
    return Article(
        id=article_id(parsed.id, key, url, source, title, body),
        title=title,
        text=body,
        url=url,
        source=source,
        published_at=parsed.published_at,
        language=_checked_language(parsed.language, title, body),
        received_at=received_at,
        authors=parsed.authors,
        canonical_url=canonical,
    )
