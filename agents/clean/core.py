"""The clean stage's pure core: raw bytes from ``news.raw`` in, one ``Article`` out.

Flow of :func:`clean`, cheapest checks first so bad input is rejected before any parsing:

1. **Guard the bytes** (:func:`decode_payload`): size limit, UTF-8 BOM, NUL bytes and
   control-character ratio, strict UTF-8.
2. **Parse** (:func:`parse_payload`) by the first non-blank character: ``{`` is a JSON
   object; ``<`` is HTML (:func:`parse_html`, selectolax/Lexbor; pathologically deep nesting
   is refused first because Lexbor is quadratic in it); any other text that parses as JSON
   (``[1]``, ``42``, ``"x"``) is not an object; everything else (including "[Reuters] ...")
   is plain text. Each path yields a :class:`Parsed`: metadata plus the body as text with
   one paragraph per line. HTML character references left in JSON/plain text are decoded.
3. **Unicode repair** (:func:`fix_unicode`): mojibake (ftfy, only when a cheap regex sees the
   tell-tale byte pairs, because ftfy costs ~300 µs per article), NFC, control and
   zero-width characters.
4. **Paragraphs and boilerplate** (:func:`body_paragraphs`): whitespace collapsed per line,
   promo/footer/byline lines removed by the :data:`BOILERPLATE_RULES` table, paragraphs
   joined by a blank line and cut to ``max_body_chars``.
5. **Metadata**: title (or the body's first sentence), date, URL, source, language
   (:func:`detect_language`), then the deterministic id (:func:`article_id`).

Failures the publisher can fix raise a ``streams.errors.RejectedInput`` subclass; anything
else escaping from here is a bug in this module.

Plain text: every non-empty line is a paragraph. Single-newline paragraphs (seed 003) are far
more common in news feeds than hard-wrapped lines, so lines are never re-joined.
"""

from __future__ import annotations

import html as html_lib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import ftfy
import orjson
from selectolax.lexbor import LexborHTMLParser, LexborNode

from streams.errors import (
    BadEncoding,
    BinaryPayload,
    EmptyBody,
    MalformedJSON,
    NotAnObject,
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
        bad = raw[exc.start : exc.start + 1].hex()
        raise BadEncoding(
            f"payload is not valid UTF-8: {exc.reason} (byte 0x{bad} at offset {exc.start}); "
            "publishers must send UTF-8"
        ) from None


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
    if parsed.title:
        parsed.title = unescape_entities(parsed.title)
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
    return _ENTITY.sub(lambda match: html_lib.unescape(match.group()), text)


def _merge_missing(into: Parsed, extra: Parsed) -> None:
    """Fill ``into`` from ``extra`` where ``into`` has nothing: explicit JSON fields win."""
    into.body = extra.body
    into.title = into.title or extra.title
    into.url = into.url or extra.url
    into.source = into.source or extra.source
    into.published_at = into.published_at or extra.published_at
    into.language = into.language or extra.language


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
_DROP_TAGS = [
    "script", "style", "nav", "header", "footer", "aside", "form", "iframe", "noscript",
    "svg", "template", "button", "figure", "figcaption", "select", "dialog",
]  # fmt: skip
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
# A private-use character marks block boundaries, so the source's own newlines (mere
# whitespace in HTML) can be collapsed without losing paragraph breaks.
_SEP = "\ue000"
_META_DATE_KEYS = (
    "article:published_time", "datepublished", "pubdate", "publishdate", "date",
    "dc.date.issued", "dc.date", "dcterms.created", "og:published_time", "sailthru.date",
)  # fmt: skip


# Lexbor's tree builder is quadratic in the number of open block elements (each new <div>
# scans the open-element stack): 20,000 nested <div>s take 1.8 s, 100,000 take 27 s. Real
# pages nest a few dozen deep, so anything past this is garbage that would stall a partition.
_MAX_BLOCK_DEPTH = 1000
_BLOCK_TAG = re.compile(
    r"<(/?)(?:div|ul|ol|dl|blockquote|section|article|aside|nav|header|footer|main|figure"
    r"|figcaption|fieldset|details|summary|form|center|menu|dir|address|hgroup|dialog)\b",
    re.IGNORECASE,
)


def _check_depth(markup: str) -> None:
    if markup.count("<") <= _MAX_BLOCK_DEPTH:
        return  # cannot nest deeper than it has tags: skip the scan for ordinary pages
    depth = 0
    for match in _BLOCK_TAG.finditer(markup):
        depth = max(depth - 1, 0) if match.group(1) else depth + 1
        if depth > _MAX_BLOCK_DEPTH:
            raise TooLarge(
                f"HTML nests block elements more than {_MAX_BLOCK_DEPTH:,} deep "
                f"(at character {match.start():,}): too deep to parse in bounded time"
            )


def parse_html(markup: str) -> Parsed:
    """Metadata and body paragraphs of an HTML page or fragment."""
    _check_depth(markup)
    tree = LexborHTMLParser(markup)
    meta = _meta_tags(tree)
    parsed = Parsed(
        title=_html_title(tree, meta),
        source=meta.get("og:site_name"),
        url=_html_url(tree, meta),
        published_at=_html_date(tree, meta),
        language=_html_lang(tree),
    )
    tree.strip_tags(_DROP_TAGS)
    for node in tree.css(_JUNK_CANDIDATES):
        if node.tag not in _NEVER_DROP and _is_junk(node):
            node.decompose()
    container = _body_container(tree)
    parsed.body = _block_text(container) if container is not None else ""
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


def _html_title(tree: LexborHTMLParser, meta: dict[str, str]) -> str | None:
    # og:title first: <title> usually carries a " | Site" suffix, <h1> may be the logo.
    title = meta.get("og:title") or meta.get("twitter:title")
    if title:
        return title
    title = _node_text(tree, "title")
    site = meta.get("og:site_name")
    if title and site:
        for sep in (" | ", " - ", " – ", " — ", " :: "):
            if title.endswith(sep + site):
                return title[: -len(sep + site)]
    return title or _node_text(tree, "h1")


def _html_url(tree: LexborHTMLParser, meta: dict[str, str]) -> str | None:
    node = tree.css_first("link[rel=canonical][href]")
    href = node.attributes.get("href") if node is not None else None
    return (href or "").strip() or meta.get("og:url")


def _html_date(tree: LexborHTMLParser, meta: dict[str, str]) -> str | None:
    for key in _META_DATE_KEYS:
        value = meta.get(key)
        if value and (parsed := parse_date(value)):
            return parsed
    for node in tree.css("time[datetime]"):
        value = node.attributes.get("datetime")
        if value and (parsed := parse_date(value)):
            return parsed
    return None


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
    if articles:
        return max(articles, key=_text_len)
    return tree.css_first("main") or tree.body or tree.root


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
    if not value:
        return None
    try:
        if len(value) == 10:
            return datetime.strptime(value, "%Y-%m-%d").date().isoformat()
        return _iso_datetime(datetime.fromisoformat(value))
    except ValueError:
        pass
    try:  # RSS feeds use RFC 2822: "Fri, 31 May 2024 10:00:00 GMT"
        return _iso_datetime(parsedate_to_datetime(value))
    except (TypeError, ValueError, IndexError):
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
    normalization="NFC",
)
# Removed outright: invisible and meaningless inside words. ZWJ/ZWNJ stay: they are spelling
# in Persian, Indic scripts and emoji. Lone surrogates cannot be encoded back to UTF-8.
_INVISIBLE = re.compile("[\u0080-\u009f\u00ad\u200b\u2060\ufeff\ud800-\udfff]")
# Replaced by a space: stray C0 controls would otherwise glue words together.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def fix_unicode(text: str) -> str:
    """Repair mojibake, normalise to NFC, drop control and zero-width characters.
    Non-breaking and other exotic spaces are folded later, with all whitespace."""
    if not text.isascii():
        if _MOJIBAKE.search(text):
            text = ftfy.fix_text(text, _FTFY_CONFIG)
        if not unicodedata.is_normalized("NFC", text):
            text = unicodedata.normalize("NFC", text)
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

#: The boilerplate table. Each line is matched against all rules at once (one combined
#: regex, ~1 µs a line); where two rules could match, the first listed wins.
BOILERPLATE_RULES: tuple[BoilerplateRule, ...] = (
    BoilerplateRule(
        "footer_marker",
        r"(?:market news and data brought to you by|posted in\s*:)",
        Action.CUT,
        "publisher footers (Benzinga): tag lists and promos follow until the end",
    ),
    BoilerplateRule(
        "copyright",
        r"(?:copyright\s*(?:©|\(c\)|\d{4})|©\s*\d{4}|\(c\)\s*\d{4})",
        Action.CUT,
        "a copyright notice ends the article; only legal text or links follow it",
    ),
    BoilerplateRule(
        "rights_reserved",
        r".{0,150}\ball rights reserved\b",
        Action.DROP,
        "a copyright line in any other form (\"Reuters. All rights reserved.\")",
    ),
    BoilerplateRule(
        "see_also",
        r"(?:see also|read next|read more|also read|related(?: \w+)?|recommended(?: \w+)?"
        r"|more from [^:]{1,40}|don'?t miss|must read|trending|top stories)\s*:",
        Action.DROP,
        "links to other stories inserted between paragraphs",
    ),
    BoilerplateRule(
        "photo_credit",
        r"\(?(?:photo|image|picture|video|graphic|illustration)s?\s*"
        r"(?:via|by|credit|courtesy|source)\b|\(?(?:photo|image)s?\s*:",
        Action.DROP,
        "image credits and captions (\"Photo via Shutterstock\", \"Image credit: ...\")",
    ),
    BoilerplateRule(
        "generated_by",
        r"this (?:story|article|report|content|post) (?:was|has been) (?:generated|written"
        r"|produced|created|compiled)\b",
        Action.DROP,
        "machine-generation and editing notices",
    ),
    BoilerplateRule(
        "reporting_by",
        r"\(?(?:additional )?(?:reporting|writing|editing|compiled) by\b",
        Action.DROP,
        "wire-service credit trailers (\"Reporting by ...; Editing by ...\")",
    ),
    BoilerplateRule(
        "call_to_action",
        r"(?:click here\b|tap here\b|sign up\b|subscribe\b|join now\b|download (?:our|the) app"
        r"|get (?:our|the) (?:free )?newsletter|register now\b|log in\b|share (?:this|on|via)\b"
        r"|trade confidently with\b|\w+ simplifies the market\b)",
        Action.DROP,
        "newsletter, subscription and app promotions (incl. Benzinga's sign-up footer)",
    ),
    BoilerplateRule(
        "follow_us",
        r"follow (?:us\b|[\w@.]+(?: [\w@.]+){0,3} on (?:twitter|x|facebook|instagram|linkedin"
        r"|tiktok|youtube|threads|bluesky|telegram|whatsapp|google news)\b)",
        Action.DROP,
        "social media promotions",
    ),
    BoilerplateRule(
        "newsletter",
        r"(?:(?:get|receive|read|try|join) )?our (?:[\w-]+ ){0,3}newsletters?\b",
        Action.DROP,
        "the publisher advertising its own newsletter (\"Get our free daily newsletter\")",
    ),
    BoilerplateRule(
        "placeholder",
        r"(?:advertisement|advert|sponsored(?: content)?|story continues below|scroll to continue"
        r"|continue reading)\W*$",
        Action.DROP,
        "ad slots and 'continue' stubs left behind in scraped text",
    ),
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


def strip_boilerplate(lines: list[str]) -> list[str]:
    """Remove boilerplate lines; a footer marker in the second half cuts the rest."""
    kept: list[str] = []
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
    text = "\n\n".join(strip_boilerplate(lines))
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
    if not host:
        return None
    return host[4:] if host.startswith("www.") else host


def article_id(
    payload_id: str | None, key: bytes | None, url: str | None, source: str | None,
    title: str, body: str,
) -> str:  # fmt: skip
    """Deterministic id: payload id, else Kafka key, else canonical URL, else content."""
    if payload_id and payload_id.strip():
        return payload_id.strip()
    if key:
        decoded = key.decode("utf-8", errors="replace").strip()
        if decoded:
            return decoded
    if url:
        return stable_id("url", url)
    return stable_id("content", source or "", title, body)


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
_LINGUA_LANGUAGES = (
    "ENGLISH", "FRENCH", "GERMAN", "SPANISH", "ITALIAN", "PORTUGUESE", "DUTCH", "RUSSIAN",
    "CHINESE", "JAPANESE", "KOREAN", "ARABIC", "TURKISH", "POLISH", "SWEDISH", "DANISH",
    "BOKMAL", "FINNISH", "GREEK", "HEBREW", "HINDI", "INDONESIAN", "VIETNAMESE", "THAI",
    "UKRAINIAN", "CZECH", "ROMANIAN", "HUNGARIAN", "PERSIAN", "MALAY",
)  # fmt: skip


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
    title = _cut_words(one_line(parsed.title or ""), MAX_TITLE_CHARS)
    body = body_paragraphs(parsed.body, title, max_body_chars)
    if not body:
        shown = f" (title: {title[:80]!r})" if title else ""
        raise EmptyBody(f"no body text left after removing markup and boilerplate{shown}")
    if not title:
        title = fallback_title(body)
    url = canonical_url(parsed.url) if parsed.url else None
    source = _strip_or_none(parsed.source) or url_host(url)
    language = _language_tag(parsed.language) or detect_language(title, body)
    return Article(
        id=article_id(parsed.id, key, url, source, title, body),
        title=title,
        text=body,
        url=url,
        source=source,
        published_at=parsed.published_at,
        language=language,
        received_at=received_at,
    )
