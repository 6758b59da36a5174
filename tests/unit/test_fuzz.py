"""Fuzzing the pure cores with Hypothesis (issue 17): whatever the input, each core returns its
result or raises its documented error, nothing else.

* ``agents.clean.core.clean``: an ``Article`` (non-empty text within ``max_body_chars``, a
  non-empty id, a one-line title, encodable) or a ``RejectedInput`` subclass;
* the watch query language (``parse_query``, ``validate_watch``, ``make_watch``,
  ``check_watch``): a watch or ``WatchError``; a valid watch matches any article without
  raising, and the compiled kernel, the Python matcher and ``match_exhaustive`` agree on the
  hits and their evidence;
* ``streams.records.decode``: the record or ``BadRecord``; ``encode`` round-trips.

Bounded for CI: each test runs a fixed number of examples, derandomized (the same ones every
run): ~33 s for the file on the shared 2-core machine, 22 s of CPU. ``HYPOTHESIS_PROFILE=long``
runs each target ``WIREWATCH_FUZZ_EXAMPLES`` (20,000) random examples instead (~25 min)::

    HYPOTHESIS_PROFILE=long .venv/bin/pytest tests/unit/test_fuzz.py -p no:cacheprovider --timeout 0

Inputs a run found that crashed stay below as explicit ``@example``s.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agents.clean.core import clean
from agents.watch.definitions import check_watch, make_watch, validate_watch
from agents.watch.match import WatchMatcher
from agents.watch.plan import parse_query, parse_terms
from streams.errors import REJECTION_REASONS, BadRecord, RejectedInput, WatchError
from streams.records import (
    Alert,
    Article,
    DeadLetter,
    Entity,
    Match,
    StorySummary,
    Watch,
    WatchHit,
    decode,
    encode,
)

# --------------------------------------------------------------------------------------------
# Profiles

LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"
_COMMON: dict[str, Any] = {
    "deadline": None,
    "database": None,  # no .hypothesis/ in the checkout; failures print how to reproduce
    "print_blob": True,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large,
                              HealthCheck.filter_too_much],
}
settings.register_profile("wirewatch-fuzz-ci", derandomize=True, **_COMMON)
settings.register_profile("long", derandomize=False,
                          max_examples=int(os.environ.get("WIREWATCH_FUZZ_EXAMPLES", "20000")),
                          **_COMMON)


def bounded(ci_examples: int) -> settings:
    """This test's settings: ``ci_examples`` derandomized examples, or the long profile's."""
    if LONG:
        return settings(settings.get_profile("long"))
    return settings(settings.get_profile("wirewatch-fuzz-ci"), max_examples=ci_examples)


# --------------------------------------------------------------------------------------------
# Shared strategies

# Characters that have broken text pipelines: NUL and other C0/C1 controls, line and paragraph
# separators, BOM and zero-width characters, bidi marks and overrides, combining marks, lone
# surrogates (high, low, and the low ones surrogateescape uses for undecodable bytes), letters
# whose case folding or NFKD changes their length (ß, İ, ŉ, ﬁ, ǅ), that fold to nothing or to
# a space (U+FF9E, U+FC5E, U+037A), or to non-letters (½, Ŀ), and non-BMP characters.
TRICKY_CHARS = [
    "\x00", "\x01", "\x07", "\x08", "\t", "\n", "\x0b", "\x0c", "\r", "\x1b", "\x1f", "\x7f",
    "\x85", "\x9f", "\xa0", "\xad", "\u2028", "\u2029", "\ufeff", "\u200b", "\u200c", "\u200d",
    "\u2060", "\u200e", "\u200f", "\u202a", "\u202e", "\u2066", "\u2069", "\u061c", "\u0301",
    "\u0308", "\u0345", "\u20dd", "\ud800", "\udbff", "\udc80", "\udcff", "\udfff", "ß", "İ",
    "ŉ", "ﬁ", "ǅ", "ẞ", "Σ", "ς", "\uff9e", "\ufc5e", "\u037a", "½", "Ŀ", "²", "٣", "Ⅻ", "𝐀",
    "😀", "\U0010ffff", "\ufffd", "\ue000", "Ã", "©", "â", "€", "“", "”", "„", "—", "…", "&", "<",
    ">", '"', "'", "\\", "/", ":", "*", "~", "(", ")", "{", "}", "[", "]", "#", ";", "=", " ",
]  # fmt: skip
# Any code point, surrogates included, with the tricky ones often.
any_char = st.one_of(st.sampled_from(TRICKY_CHARS), st.characters(codec=None, categories=None))
tricky_text = st.text(alphabet=any_char, max_size=60)
# Text that survives UTF-8 (no surrogates), for fields a JSON encoder must accept.
utf8_text = st.text(alphabet=st.one_of(
    st.sampled_from([c for c in TRICKY_CHARS if not "\ud800" <= c <= "\udfff"]),
    st.characters(codec="utf-8")), max_size=60)


def to_bytes(text: str) -> bytes:
    """UTF-8, with surrogates as a byte-level encoder would leave them: U+DC80..U+DCFF as the
    raw byte they escape (``surrogateescape``), other surrogates as their 3-byte forms."""
    out = bytearray()
    for char in text:
        cp = ord(char)
        if 0xDC80 <= cp <= 0xDCFF:
            out.append(cp - 0xDC00)
        else:
            out += char.encode("utf-8", "surrogatepass")
    return bytes(out)


json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False), utf8_text,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(utf8_text, inner, max_size=4),
    max_leaves=10,
)

# Dates: ISO forms with any offset (9999-12-31T23:59-05:00 is past datetime.max in UTC),
# RFC 2822 forms, and unix seconds or milliseconds of any size.
_offsets = st.integers(min_value=-1439, max_value=1439).map(lambda m: timezone(timedelta(minutes=m)))
_moments = st.datetimes(timezones=st.none() | _offsets)
_aware = st.datetimes(timezones=_offsets)
date_strings = st.one_of(
    _moments.map(datetime.isoformat),
    _moments.map(lambda d: d.isoformat(sep=" ", timespec="minutes")),
    _moments.map(lambda d: d.date().isoformat()),
    _aware.map(format_datetime),
    st.sampled_from(["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", "2024-02-30",
                     "Fri, 31 May 99999 10:00:00 GMT", "Mon, 1 Jan 0001 00:00:00 +2359", "",
                     "2024-05-31T10:00Z", "yesterday", "0000-00-00", "2024-W05-3"]),
    tricky_text,
)
epochs = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -1, 1e11, 1e11 + 1, 253402300800, 253402300800000, -62135596801, 1e300]),
)

# --------------------------------------------------------------------------------------------
# clean()

BOILERPLATE_LINES = [
    "See Also: Markets rally", "Read Next: more", "Posted In: News", "Photo via Shutterstock",
    "By Jane Doe", "By JANE DOE and John Roe, Associated Press", "Copyright 2024 Reuters",
    "© 2024 AP", "All rights reserved.", "Advertisement", "Sign up for our newsletter",
    "Follow us on Twitter", "Reporting by Jane Doe; Editing by John Roe", "Continue reading",
]  # fmt: skip
PROSE = [
    "Taiwan Strait", "The navy chiefs agreed a hotline on Tuesday.", "Zürich café prices rose.",
    "東京で会議が開かれた。", "Москва заявила о переговорах.", "الرياض تعلن عن اتفاق", "2024",
    "crisis-communications", "U.S. officials said", "Ãcole Ã©tÃ©", "&amp; &#39;quoted&#39; &copy;",
]  # fmt: skip
line_text = st.one_of(tricky_text, st.sampled_from(BOILERPLATE_LINES + PROSE))
line_breaks = st.sampled_from(["\n", "\r\n", "\r", "\n\n", "\u2028", "\x85", "\x0b", " "])


@st.composite
def plain_texts(draw: st.DrawFn) -> str:
    lines = draw(st.lists(line_text, max_size=12))
    breaks = draw(st.lists(line_breaks, min_size=len(lines), max_size=len(lines)))
    text = "".join(line + brk for line, brk in zip(lines, breaks, strict=True))
    prefix = draw(st.one_of(st.just(""), st.builds("date {} ".format, date_strings),
                            st.builds("Date: {}\n".format, date_strings)))
    return prefix + text


HTML_TAGS = [
    "p", "div", "article", "main", "body", "html", "head", "title", "h1", "h2", "script", "style",
    "nav", "header", "footer", "aside", "span", "a", "br", "hr", "li", "ul", "time", "meta",
    "link", "section", "figure", "template", "svg", "table", "td", "pre", "blockquote", "form",
    "noscript", "iframe", "button", "select", "dialog", "textarea", "plaintext", "xmp", "b",
]  # fmt: skip
_attr_values = st.one_of(
    st.sampled_from(["ad", "ads", "share-bar", "header", "content", "related", "comments",
                     "commentary", "articleBody", "canonical", "og:title", "og:site_name",
                     "og:url", "article:published_time", "datePublished", "en-GB", "EN",
                     "https://Example.COM/a?utm_source=x&b=1#frag", "http://[::1", ""]),
    date_strings, utf8_text,
)
_attr_names = st.sampled_from(["class", "id", "itemprop", "property", "name", "content", "rel",
                               "href", "datetime", "lang", "style", "onload", "data-x"])
html_attrs = st.lists(st.tuples(_attr_names, _attr_values), max_size=4).map(
    lambda pairs: "".join(f' {k}="{v.replace(chr(34), "&quot;")}"' for k, v in pairs))
HTML_RAW = [
    "<!DOCTYPE html>", "<!--", "-->", "<![CDATA[", "]]>", "</p>", "</div>", "<", ">", "&", "&amp;",
    "&#0;", "&#x110000;", "&#xD800;", "&#99999999;", "&nbsp;", "&copy", "&bogus;", "&#x;", "</",
    "<p", "<?xml version='1.0'?>", "<script>", "</script>", "<br/>", "\x00", "<\x00>",
]  # fmt: skip
html_text = st.one_of(line_text, st.sampled_from(HTML_RAW))


def _element(children: st.SearchStrategy[list[str]]) -> st.SearchStrategy[str]:
    return st.builds(
        lambda tag, attrs, kids, closed: f"<{tag}{attrs}>{''.join(kids)}" + (f"</{tag}>" if closed else ""),
        st.sampled_from(HTML_TAGS), html_attrs, children, st.booleans())


html_nodes = st.recursive(html_text, lambda inner: _element(st.lists(inner, max_size=4)), max_leaves=25)
html_docs = st.lists(html_nodes, min_size=1, max_size=6).map("".join)

JSON_FIELDS = ["id", "url", "source", "title", "text", "html", "published_at", "language"]


@st.composite
def json_payloads(draw: st.DrawFn) -> bytes:
    """A JSON object: the clean stage's fields, often of the right type and sometimes not,
    beside random keys, serialised by orjson or by json (with \\uXXXX escapes, which reach
    lone surrogates)."""
    typed = {
        "id": st.one_of(utf8_text, st.integers(min_value=-(2**63), max_value=2**64 - 1)),
        "url": st.one_of(utf8_text, st.sampled_from(["https://Example.COM/a?utm_source=x&b=1#f",
                                                     "http://[::1", "//x", " "])),
        "source": utf8_text, "title": line_text,
        "text": st.one_of(plain_texts(), html_docs), "html": html_docs,
        "published_at": st.one_of(date_strings, epochs), "language": st.one_of(
            utf8_text, st.sampled_from(["en", "en-GB", "EN_us", "zz", "ελ", "e1", ""])),
    }
    data: dict[str, Any] = {}
    for name in draw(st.lists(st.sampled_from(JSON_FIELDS), unique=True)):
        data[name] = draw(st.one_of(typed[name], json_values) if draw(st.integers(0, 3))
                          else json_values)
    data.update(draw(st.dictionaries(utf8_text, json_values, max_size=3)))
    how = draw(st.sampled_from(["orjson", "ascii", "raw"]))
    lead = draw(st.sampled_from(["", " ", "\n", "\ufeff", "\t\r\n "]))
    if how == "orjson":
        try:
            body = orjson.dumps(data)
        except TypeError:  # a lone surrogate in a string: write it out as json does
            body = to_bytes(json.dumps(data, ensure_ascii=False))
    else:
        body = to_bytes(json.dumps(data, ensure_ascii=how == "ascii"))
    return lead.encode() + body


raw_payloads = st.one_of(
    st.binary(max_size=300),
    json_payloads(),
    html_docs.map(to_bytes),
    plain_texts().map(to_bytes),
    tricky_text.map(to_bytes),
    st.tuples(st.sampled_from([b"\xef\xbb\xbf", b" ", b"", b"[", b"{", b"<"]), st.binary(max_size=50)).map(
        lambda t: t[0] + t[1]),
)


def check_cleaned(raw: bytes, key: bytes | None, max_body_chars: int) -> Article | None:
    """``clean`` returns a sound ``Article`` or raises a ``RejectedInput`` subclass."""
    try:
        article = clean(raw, key=key, received_at=1.0, max_body_chars=max_body_chars)
    except RejectedInput as exc:
        assert type(exc) is not RejectedInput and exc.reason in REJECTION_REASONS
        assert isinstance(exc.message, str) and exc.message
        return None
    assert isinstance(article, Article)
    assert isinstance(article.id, str) and article.id
    assert isinstance(article.text, str) and article.text.strip()
    assert len(article.text) <= max_body_chars
    assert isinstance(article.title, str)
    assert "\n" not in article.title and len(article.title.splitlines()) <= 1
    assert article.language is None or re.fullmatch("[a-z]{2}", article.language)
    article.published_timestamp()  # the dedup stage reads it: None or a float, never a raise
    assert decode(Article, encode(article)) == article  # the clean agent publishes it
    return article


bodies = st.one_of(st.just(200_000), st.integers(min_value=0, max_value=300))
keys = st.one_of(st.none(), st.binary(max_size=12), st.just(b"  "), st.just(b"\xff\xfe"))


@bounded(ci_examples=600)
@given(raw=raw_payloads, key=keys, max_body_chars=bodies)
@example(raw=b"", key=None, max_body_chars=200_000)
@example(raw=b"\xef\xbb\xbf", key=None, max_body_chars=200_000)
@example(raw=b'{"text": "x", "id": "  "}', key=b" ", max_body_chars=1)
@example(raw=b"<div>" * 1001 + b"x", key=None, max_body_chars=200_000)
@example(raw=b'{"text": "body", "published_at": 1e300}', key=None, max_body_chars=200_000)
@example(raw="Title\n\uff9e \ufc5e \u037a body".encode(), key=None, max_body_chars=200_000)
def test_clean_returns_an_article_or_rejects(raw: bytes, key: bytes | None, max_body_chars: int) -> None:
    check_cleaned(raw, key, max_body_chars)


# Found by test_clean_returns_an_article_or_rejects: every path to parse_date (the plain-text
# "date" line, a JSON published_at, an HTML <meta> or <time>, RFC 2822 dates).
CLEAN_CRASHES = [
    pytest.param(b"date9999-12-31T20:21:00-0339", id="found"),  # as the fuzzer shrank it
    pytest.param(b"date 9999-12-31T23:59:59-05:00\nTitle\nbody", id="plain-date-line"),
    pytest.param(b'{"title": "t", "text": "body", "published_at": "9999-12-31T23:59:59-05:00"}',
                 id="json-iso"),
    pytest.param(b'{"text": "body", "published_at": "Fri, 31 Dec 9999 23:59:59 -0500"}',
                 id="json-rfc2822"),
    pytest.param(b'<meta property="article:published_time" content="0001-01-01T00:00:00+05:00">'
                 b"<p>body</p>", id="html-meta"),
    pytest.param(b'<time datetime="0001-01-01 00:00+00:01"></time><p>body</p>', id="html-time"),
]


@pytest.mark.parametrize("raw", CLEAN_CRASHES)
def test_dates_past_year_9999_or_before_year_1_in_utc_are_no_crash(raw: bytes) -> None:
    # parse_date let OverflowError out of astimezone; now such a date is no date.
    check_cleaned(raw, None, 200_000)


# --------------------------------------------------------------------------------------------
# The watch query language and matching

# Words the queries and the articles share, so that queries hit: case, plurals, prefixes,
# diacritics, folding that changes length, tokens that fold to nothing or to a space.
WORDS = [
    "taiwan", "Taiwan", "TAIWAN", "strait", "straits", "Strait's", "city", "cities", "box",
    "boxes", "news", "bus", "crisis", "communications", "commun", "café", "cafe", "CAFÉ", "Zürich",
    "zurich", "straße", "strasse", "İstanbul", "istanbul", "ﬁnance", "finance", "x", "a", "of",
    "the", "5bn", "2024", "U.S.", "can't", "east-west", "日本", "東京", "ǅemal", "Ⅻ", "ΣΑΣ",
    "σας", "drills", "exercise", "exercises", "reuters", "bbc", "en", "fr", "\uff9e", "\ufc5e",
    "\u037a", "½", "a\u0301", "á", "ŉ",
]  # fmt: skip
QUERY_TOKENS = [
    "(", ")", '"', "“", "”", "„", "AND", "OR", "NOT", "NEAR/0", "NEAR/1", "NEAR/5", "NEAR/50",
    "NEAR/51", "NEAR/", "NEAR/x", "NEAR/٣", "NEAR/²", "NEAR/01", "*", "~", "title:", "text:",
    "entity:", "source:", "lang:", "TITLE:", "Lang:", "foo:", ":", "and", "or", "not", "near",
]  # fmt: skip
query_words = st.builds(
    "{}{}".format,
    st.one_of(st.sampled_from(WORDS), st.text(alphabet=any_char, min_size=1, max_size=5)),
    st.sampled_from(["", "", "", "*", "~", "*~", "~*"]),
)
query_token = st.one_of(st.sampled_from(QUERY_TOKENS), query_words)
query_seps = st.sampled_from([" ", " ", " ", "", "  ", "\u3000", "\xa0"])


@st.composite
def grammar_queries(draw: st.DrawFn) -> str:
    """Queries built from the grammar's tokens: mostly near-valid, often valid."""
    parts = draw(st.lists(query_token, min_size=1, max_size=14))
    seps = draw(st.lists(query_seps, min_size=len(parts), max_size=len(parts)))
    return "".join(p + s for p, s in zip(parts, seps, strict=True)).strip()


@st.composite
def good_queries(draw: st.DrawFn) -> str:
    """Queries made by the grammar's rules, so nearly all are valid and the matcher runs."""
    def term() -> str:
        words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=3))
        if draw(st.booleans()):
            words[-1] += draw(st.sampled_from(["*", "~"]))
        text = " ".join(words)
        if draw(st.booleans()):
            text = '"' + text + '"' + draw(st.sampled_from(["", "~"]))
        scope = draw(st.sampled_from(["", "", "", "title:", "text:", "entity:", "source:", "lang:"]))
        return scope + text

    def node(depth: int) -> str:
        kind = draw(st.sampled_from(["term", "term", "and", "or", "not", "near", "group"])
                    if depth < 3 else st.just("term"))
        if kind == "term":
            return term()
        if kind == "group":
            return "(" + node(depth + 1) + ")"
        if kind == "not":
            return node(depth + 1) + " NOT " + node(depth + 1)
        if kind == "near":
            return f"{node(depth + 1)} NEAR/{draw(st.integers(0, 6))} {node(depth + 1)}"
        return f" {kind.upper()} ".join(node(depth + 1) for _ in range(draw(st.integers(2, 3))))

    return node(0)


any_query = st.one_of(st.text(alphabet=any_char, max_size=80), grammar_queries(), good_queries(),
                      st.text(max_size=1100))


def parsed_or_refused(query: str, *, plurals: bool) -> bool:
    """``parse_query`` and ``parse_terms``: a tree and keys, or ``WatchError``."""
    try:
        root, prefilter = parse_query(query, plurals=plurals)
    except WatchError as exc:
        assert str(exc)
        return False
    assert root is not None and prefilter
    # Keys as the matchers need them (the kernel refuses others): " tok tok " or " prefix",
    # never an empty token (U+FF9E folds to "", U+FC5E to " ").
    assert all(k.startswith(" ") and len(k) >= 2 and "  " not in k for k in prefilter)
    if not plurals:
        assert all(isinstance(t, str) for t in parse_terms(query))
    return True


@bounded(ci_examples=800)
@given(query=any_query, name=st.one_of(tricky_text, st.sampled_from(WORDS)))
@example(query="\uff9e", name="w")
@example(query="\ufc5e", name="w")
@example(query='"a" NEAR/3 \ufc5e', name="w")
@example(query="NEAR/²", name="w")
@example(query="((((((((( x )))))))))", name="w")
def test_queries_parse_or_raise_watch_error(query: str, name: str) -> None:
    valid = parsed_or_refused(query, plurals=False)
    # ``plurals`` says how a query is parsed, never whether it is refused.
    assert parsed_or_refused(query, plurals=True) == valid
    for args in ((query,), (name, query)):
        try:
            stored = validate_watch(*args)
        except WatchError:
            continue
        assert all(isinstance(s, str) for s in stored)
    try:
        watch = make_watch(name, query, created_at=0.0)
    except WatchError:
        return
    assert isinstance(watch, Watch) and watch.id and watch.query == query.strip()
    check_watch(watch)  # a watch make_watch gives is one check_watch accepts


@st.composite
def article_texts(draw: st.DrawFn) -> str:
    words = draw(st.lists(st.one_of(st.sampled_from(WORDS), utf8_text.map(lambda s: s[:6])),
                          max_size=40))
    seps = draw(st.lists(st.sampled_from([" ", " ", " ", "  ", "-", "'s ", ", ", ". ", "\n\n", "—",
                                          "“", "”", "_", "/", "\xa0", "\u200b", "\t", "\u2028", ""]),
                         min_size=len(words), max_size=len(words)))
    return "".join(w + s for w, s in zip(words, seps, strict=True))


_phrase = st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join)
articles = st.builds(
    Article,
    id=st.just("a"),
    title=article_texts(),
    text=article_texts(),
    source=st.none() | _phrase | utf8_text,
    language=st.none() | st.sampled_from(["en", "fr", "EN", "en-GB", ""]) | _phrase,
    entities=st.lists(st.builds(Entity, name=_phrase | utf8_text,
                                kind=st.sampled_from(["person", "org", "place"])), max_size=3),
)


def check_matchers(watches: list[Watch], article: Article, plurals: bool) -> None:
    """The kernel, the Python matcher and the plain evaluation agree on hits and evidence."""
    kernel = WatchMatcher(watches, plurals=plurals)
    python = WatchMatcher(watches, plurals=plurals, compiled=False)
    exhaustive = python.match_exhaustive(article)
    expected = [hit for hit, _ in exhaustive]
    assert [h.watch_name for h in kernel.match(article)] == [h.watch_name for h in expected]
    assert [h.watch_name for h in python.match(article)] == [h.watch_name for h in expected]
    assert kernel.match(article) == expected  # again: the kernel's remembered hits
    assert python.match(article) == expected
    fields = {"title": article.title, "text": article.text}
    for matcher in (kernel, python):
        evidence = matcher.evidence(article)
        for hit, matches in exhaustive:
            found = evidence.matches(hit.watch_id)
            assert found == matches
            for m in found:
                assert 0 <= m.start < m.end <= len(fields[m.field]) and m.snippet
        hit_ids = {hit.watch_id for hit, _ in exhaustive}
        for watch in watches:
            if watch.id not in hit_ids:
                assert evidence.matches(watch.id) == []
        assert evidence.matches("no such watch") == []


@bounded(ci_examples=400)
@given(queries=st.lists(st.one_of(good_queries(), grammar_queries()), min_size=1, max_size=4),
       article=articles, plurals=st.booleans())
@example(queries=["\ufc5e"], article=Article(id="a", title="\ufc5e", text="x \ufc5e y"), plurals=False)
@example(queries=["ﾞa"], article=Article(id="a", title="", text="\uff9e a"), plurals=False)
@example(queries=['"\u037a x" NEAR/1 y'], article=Article(id="a", title="", text="\u037a x y"),
         plurals=True)
# Two terms with one text, only the later one evidence: the hit names the terms that matched in
# the query's order (match_exhaustive said ["taiwan*", "taiwan"], after the unmatched title:).
@example(queries=["title:taiwan* OR taiwan AND taiwan AND taiwan*"],
         article=Article(id="a", title="", text="taiwan "), plurals=False)
@example(queries=["(title:b OR a) NEAR/3 b", "NOT title:b AND a AND b", "title:b~ OR (a AND b)"],
         article=Article(id="a", title="", text="a b"), plurals=False)
def test_valid_watches_match_any_article(queries: list[str], article: Article, plurals: bool) -> None:
    watches = []
    for n, query in enumerate(queries):
        try:
            watches.append(make_watch(f"w{n}", query, created_at=0.0))
        except WatchError:
            continue
    check_matchers(watches, article, plurals)


# --------------------------------------------------------------------------------------------
# Records

RECORDS: list[type] = [Article, Alert, Watch, DeadLetter]
_NESTED_FIELDS = {"entities", "watch_hits", "story", "matches"}
_RECORD_FIELDS = sorted({f.name for cls in (*RECORDS, Entity, WatchHit, StorySummary, Match)
                         for f in dataclasses.fields(cls)})
urls = st.one_of(
    st.builds("{}://{}{}{}".format,
              st.sampled_from(["http", "https", "ftp", "HTTP", "javascript", ""]),
              st.one_of(st.sampled_from(["example.org", "[::1]", "[::1", "[notanip]", "a..b",
                                         "bücher.de", "xn--bcher-kva.de", "user@host", "a@b@c",
                                         "h" * 64 + ".com", ".", "", "[v1.x]", "host_name"]),
                        utf8_text),
              st.sampled_from(["", ":80", ":0", ":+80", ":65536", ":٣", ":x", ":", ":99999999999"]),
              st.sampled_from(["", "/", "/hook?x=1#f", "\\x", " /a", "/\x00"])),
    tricky_text,
)


@st.composite
def record_objects(draw: st.DrawFn, cls: type) -> bytes:
    """A JSON object with the record's fields (and its nested records' and others), each of a
    random JSON type; the nested fields often as objects or lists of objects."""
    own = [f.name for f in dataclasses.fields(cls)]
    names = draw(st.lists(st.sampled_from(_RECORD_FIELDS + own * 3),
                          unique=True, max_size=12))
    nested = st.dictionaries(st.sampled_from(_RECORD_FIELDS), json_values, max_size=5)
    data: dict[str, Any] = {}
    for name in names:
        if name in _NESTED_FIELDS:
            data[name] = draw(st.one_of(json_values, nested, st.lists(nested, max_size=3)))
        elif name in ("webhook_url", "url"):
            data[name] = draw(st.one_of(urls, json_values))
        else:
            data[name] = draw(json_values)
    try:
        return orjson.dumps(data)
    except TypeError:  # a lone surrogate
        return to_bytes(json.dumps(data))


def check_decoded(cls: type, payload: bytes) -> object | None:
    """``decode``: the record or ``BadRecord``; what it decodes encodes and decodes again."""
    try:
        record: object = decode(cls, payload)
    except BadRecord as exc:
        assert exc.reason == "bad_record" and exc.message
        return None
    assert isinstance(record, cls)
    assert decode(cls, encode(record)) == record
    return record


@bounded(ci_examples=300)
@given(cls=st.sampled_from(RECORDS), payload=st.one_of(
    st.binary(max_size=200),
    st.sampled_from(RECORDS).flatmap(record_objects),
    json_values.map(lambda v: to_bytes(json.dumps(v))),
    utf8_text.map(str.encode),
))
@example(cls=Article, payload=b'{"id": "a", "title": "t", "text": "x", "entities": {"name": "n"}}')
@example(cls=Article, payload=b'{"id": "a", "title": "t", "text": "x", "story": [{}]}')
@example(cls=Alert, payload=b'{"matches": [1]}')
@example(cls=Watch, payload=b'{"id": "a", "name": "n", "query": "q", "id": 1}')
@example(cls=Watch, payload=b'{"id": "a", "name": "n", "query": "\\ud800"}')
@example(cls=DeadLetter, payload=b"[" * 2000)
@example(cls=Article, payload=b'{"id": 123456789012345678901234567890}')
def test_decode_returns_the_record_or_bad_record(cls: type, payload: bytes) -> None:
    record = check_decoded(cls, payload)
    if isinstance(record, Watch):  # news.watches: any producer may write there
        try:
            check_watch(record)
        except WatchError:
            pass


@bounded(ci_examples=200)
@given(cls=st.just(Watch), payload=record_objects(Watch))
def test_watch_records_are_checked_or_refused(cls: type, payload: bytes) -> None:
    record = check_decoded(cls, payload)
    if record is None:
        return
    try:
        check_watch(record)  # type: ignore[arg-type]
    except WatchError as exc:
        assert str(exc)


# Records of the right shape: encode then decode gives them back.
floats = st.floats(allow_nan=False, allow_infinity=False)
ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)
strs = st.text(max_size=20)  # no lone surrogates: orjson cannot encode those
opt_strs = st.none() | strs
entities = st.builds(Entity, name=strs, kind=strs, count=ints)
matches = st.builds(Match, term=strs, field=strs, start=ints, end=ints, snippet=strs)
valid_records = st.one_of(
    st.builds(Article, id=strs, title=strs, text=strs, url=opt_strs, source=opt_strs,
              published_at=opt_strs, language=opt_strs, received_at=floats,
              stage_times=st.dictionaries(strs, floats, max_size=3),
              entities=st.lists(entities, max_size=3), keywords=st.lists(strs, max_size=3),
              categories=st.lists(strs, max_size=3),
              watch_hits=st.lists(st.builds(WatchHit, watch_id=strs, watch_name=strs,
                                            terms=st.lists(strs, max_size=3)), max_size=3),
              story_id=opt_strs, duplicate_of=opt_strs,
              story=st.none() | st.builds(StorySummary, first_seen=floats, last_seen=floats,
                                          article_count=ints, sources=st.lists(strs, max_size=3)),
              schema_version=ints),
    st.builds(Alert, alert_id=strs, kind=strs, revision=ints, watch_id=strs, watch_name=strs,
              story_id=strs, article_id=strs, title=strs, url=opt_strs, source=opt_strs,
              published_at=opt_strs, sources=st.lists(strs, max_size=3),
              article_ids=st.lists(strs, max_size=3), terms=st.lists(strs, max_size=3),
              matches=st.lists(matches, max_size=3), opened_at=floats, updated_at=floats,
              received_at=floats, story_ids=st.lists(strs, max_size=3), held_alerts=ints,
              schema_version=ints),
    st.builds(Watch, id=strs, name=strs, query=strs, created_at=floats, webhook_url=opt_strs,
              rate_limit=st.none() | ints, schema_version=ints),
    st.builds(DeadLetter, stage=strs, reason=strs, error=strs, topic=strs, partition=ints,
              offset=ints, key=opt_strs, payload_b64=strs, payload_size=ints, failed_at=floats,
              schema_version=ints),
)


@bounded(ci_examples=300)
@given(record=valid_records)
def test_valid_records_round_trip(record: Any) -> None:
    assert decode(type(record), encode(record)) == record

