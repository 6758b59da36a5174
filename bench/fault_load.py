"""What ``bench/faults.py`` throws at the pipeline: hostile raw payloads, pathological watch
definitions, and an HTTP load (keep-alive clients and slow-loris sockets) run in a process of
its own.

Everything here is generated in code with fixed seeds, so every run sends the same bytes:

* :func:`hostile_payloads`: raw messages for ``news.raw`` that the clean stage must refuse
  (dead-letter with a reason), or, for the few marked ``bounded``, may accept only cut to the
  documented limits;
* :func:`watch_cases`: watch definitions for ``POST /watches/`` and ``wirewatch watch add``,
  each with the outcome it must get (accepted, refused, or either);
* ``python bench/fault_load.py --http-load PORT ...``: the load process (see :func:`hammer`),
  which prints its counts as one JSON line when a line arrives on stdin or its time is up.

Loopback only; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from bench.http_load import read_response

# ---------------------------------------------------------------------- hostile payloads ---

MAX_MESSAGE_BYTES = 1_048_576  # the default WIREWATCH_MAX_MESSAGE_BYTES
#: What an accepted "bounded" payload's record on news.stories may hold at most. Title and
#: text are the clean stage's documented limits (500 characters, WIREWATCH_MAX_BODY_CHARS);
#: id, URL and source have none documented: these are the bounds the suite holds them to.
BOUNDS = {"id": 1024, "title": 500, "text": 200_000, "url": 2048, "source": 500}

_WORDS = ("minister", "parliament", "budget", "election", "council", "market", "shares", "bank",
          "economy", "rates", "inflation", "growth", "report", "committee", "policy", "reform",
          "vote", "union", "strike", "energy", "prices", "health", "service", "schools",
          "transport", "rail", "housing", "court", "judge", "appeal", "police")


@dataclass(frozen=True)
class Hostile:
    """One hostile raw message: its key (``hostile-<n>``), value, what it is, and what must
    happen to it: ``deadletter`` (with one of ``reasons``, any but internal_error if empty)
    or ``bounded`` (dead-lettered, or accepted with every field within ``BOUNDS``). A payload
    that sets an id writes ``HOSTILE_KEY`` where the sender puts the key, so an accepted one
    can be told apart on news.stories."""

    key: bytes
    value: bytes | None
    kind: str
    expect: str = "deadletter"
    reasons: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.key.decode()


def _prose(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words)).capitalize() + "."


def _article(rng: random.Random, **fields: Any) -> dict[str, Any]:
    body = {"title": _prose(rng, 8), "text": "\n\n".join(_prose(rng, 40) for _ in range(3)),
            "source": "Hostile Wire"}
    body.update(fields)
    return {k: v for k, v in body.items() if v is not _DROP}


_DROP = object()


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if not n:
            return out


def _kinds(rng: random.Random) -> list[tuple[str, bytes | None, str, tuple[str, ...]]]:
    """(kind, value, expect, reasons) of every distinct hostile shape, cheap ones first."""
    out: list[tuple[str, bytes | None, str, tuple[str, ...]]] = []

    def add(kind: str, value: bytes | None, expect: str = "deadletter",
            reasons: tuple[str, ...] = ()) -> None:
        out.append((kind, value, expect, reasons))

    # --- bytes that are not text
    add("empty", b"", reasons=("empty_body",))
    add("null_value", None, reasons=("empty_body",))
    add("nul_bytes", b'{"title": "a\x00b", "text": "c\x00d"}', reasons=("binary",))
    add("only_nuls", b"\x00" * 4096, reasons=("binary",))
    add("control_chars", bytes(rng.randrange(1, 9) for _ in range(2000)), reasons=("binary",))
    add("bad_utf8_overlong", b'{"title": "x", "text": "\xc0\xaf\xc0\xaf"}',
        reasons=("bad_encoding",))
    add("bad_utf8_cesu_surrogate", b'{"title": "x", "text": "\xed\xa0\x80 words"}',
        reasons=("bad_encoding",))
    add("bad_utf8_lone_continuation", b"Title\n\x80\x81\x82 body", reasons=("bad_encoding",))
    add("latin1_text", "Caf\u00e9 na\u00efve r\u00e9sum\u00e9\nBody".encode("latin-1"),
        reasons=("bad_encoding",))
    add("bom_only", b"\xef\xbb\xbf", reasons=("empty_body",))
    # --- JSON that is broken, deep, or not an object
    good = orjson.dumps(_article(rng))
    for cut in (1, 2, 10, len(good) // 2, len(good) - 1):
        add(f"truncated_json_{cut}", good[:cut], reasons=("malformed_json",))
    add("nested_object_10000", b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        reasons=("malformed_json",))
    add("nested_in_text_10000", b'{"title":"t","text":' + b'{"a":' * 10_000 + b'"x"'
        + b"}" * 10_001, reasons=("malformed_json",))
    add("nested_array_10000", b"[" * 10_000 + b"]" * 10_000,
        reasons=("empty_body", "not_an_object", "malformed_json"))
    add("nested_in_text_500", b'{"title":"t","text":' + b"[" * 500 + b"]" * 500 + b"}",
        reasons=("wrong_field_type",))
    add("lone_high_surrogate", b'{"title": "t", "text": "\\ud800 body text here"}',
        reasons=("malformed_json",))
    add("lone_low_surrogate", b'{"title": "\\udfff", "text": "body"}',
        reasons=("malformed_json",))
    add("surrogate_in_id", b'{"id": "\\udc00x", "title": "t", "text": "body text"}',
        reasons=("malformed_json",))
    add("escaped_nul_only_text", b'{"title": "", "text": "' + b"\\u0000" * 500 + b'"}',
        reasons=("empty_body",))
    add("escaped_nul_in_id", orjson.dumps(_article(rng, id="HOSTILE_KEY\u0000id")), "bounded")
    add("duplicate_keys", b'{"text": 1, "text": [], "title": {}}',
        reasons=("wrong_field_type", "malformed_json"))
    add("big_integer", b'{"title": "t", "text": 1' + b"0" * 400 + b"}",
        reasons=("wrong_field_type", "malformed_json"))
    add("nan_literal", b'{"title": NaN, "text": Infinity}', reasons=("malformed_json",))
    for literal in (b"[1, 2, 3]", b"42", b'"just a string"', b"true", b"null", b"-0.5e3"):
        add(f"not_an_object_{literal[:6].decode()}", literal, reasons=("not_an_object",))
    # --- wrong types for every field
    wrong = {"number": 42.5, "true": True, "list": ["a"], "object": {"a": 1}}
    for name in ("id", "url", "source", "title", "text", "html", "published_at", "language"):
        for label, value in wrong.items():
            if name == "published_at" and label == "number":
                continue  # unix seconds: a valid type
            add(f"wrong_type_{name}_{label}", orjson.dumps(_article(rng, **{name: value})),
                reasons=("wrong_field_type",))
    add("no_text_fields", orjson.dumps({"title": "only a title", "source": "x"}),
        reasons=("empty_body",))
    add("whitespace_text", orjson.dumps({"title": "t", "text": " \n\t\u00a0\u200b " * 1000}),
        reasons=("empty_body",))
    add("boilerplate_only", orjson.dumps({"title": "t", "text": "Advertisement\n\nSign up for "
                                          "our newsletter\n\nCopyright 2024 Hostile Wire"}),
        reasons=("empty_body",))
    # --- sizes: over the byte limit, and huge fields under it
    add("text_5mb", orjson.dumps(_article(rng, text="lorem ipsum " * (5 * 1024 * 1024 // 12))),
        reasons=("too_large",))
    add("title_1_2mb", orjson.dumps(_article(rng, title="T" * 1_200_000)), reasons=("too_large",))
    add("plain_2mb", ("x" * 2_000_000).encode(), reasons=("too_large",))
    add("html_2mb", b"<html><body><p>" + b"word " * 400_000 + b"</p></body></html>",
        reasons=("too_large",))
    add("id_900kb", orjson.dumps(_article(rng, id="HOSTILE_KEY-" + "9" * 900_000)), "bounded")
    add("url_900kb", orjson.dumps(_article(rng, url="https://x.example/" + "u" * 900_000)),
        "bounded")
    add("source_900kb", orjson.dumps(_article(rng, source="S" * 900_000)), "bounded")
    add("title_900kb", orjson.dumps(_article(rng, title="word " * 180_000)), "bounded")
    add("text_900kb", orjson.dumps(_article(rng, text=_prose(rng, 115_000))), "bounded")
    add("language_900kb", orjson.dumps(_article(rng, language="e" * 900_000)), "bounded")
    add("date_900kb", orjson.dumps(_article(rng, published_at="2" * 900_000)), "bounded")
    add("key_only_900kb_line", ("x" * 900_000).encode(), reasons=("empty_body",))
    add("newlines_900k", b"\n" * 900_000, reasons=("empty_body", "binary"))
    add("entities_200k", orjson.dumps({"title": "t", "text": "&amp;" * 200_000}), "bounded")
    # --- pathological HTML (no prose, so nothing is left to keep)
    attrs = " ".join(_base36(i) for i in range(200_000))
    add("html_200k_attributes", f"<html><body><div {attrs}></div></body></html>".encode(),
        reasons=("empty_body", "too_complex", "too_large"))
    add("html_div_100k_deep", b"<div>" * 100_000 + b"x" + b"</div>" * 100_000,
        reasons=("too_large", "too_complex", "empty_body"))
    add("html_span_60k_deep", b"<html><body>" + b"<span>" * 60_000,
        reasons=("too_large", "too_complex", "empty_body"))
    add("html_b_100k_deep", b"<html><body>" + b"<b>" * 100_000,
        reasons=("too_large", "too_complex", "empty_body"))
    add("html_a_60k_deep", b"<html><body>" + b"<a href=#>" * 60_000,
        reasons=("too_large", "too_complex", "empty_body"))
    add("html_table_30k_deep", b"<html><body>" + b"<table><tr><td>" * 30_000,
        reasons=("too_large", "too_complex", "empty_body"))
    add("html_unclosed_comment", b"<html><body><!--" + b"-" * 900_000,
        reasons=("empty_body", "too_complex", "too_large"))
    add("html_200k_br", b"<html><body>" + b"<br>" * 200_000 + b"</body></html>",
        reasons=("empty_body", "too_complex", "too_large"))
    add("html_lt_900k", b"<" * 900_000, "bounded")  # Lexbor reads it as text: 900 KB of "<"
    add("html_50k_meta", b"<html><head>" + b'<meta name="date" content="x">' * 30_000
        + b"</head><body></body></html>", reasons=("empty_body", "too_complex", "too_large"))
    add("html_scripts_only", b"<html><body>" + b"<script>var a=1;</script>" * 30_000
        + b"</body></html>", reasons=("empty_body", "too_complex", "too_large"))
    add("html_in_json_deep", orjson.dumps({"title": "t", "html": "<div>" * 100_000}),
        reasons=("too_large", "too_complex", "empty_body"))
    return out


#: The shapes a short run sends (one or two of every family), in this order.
SHORT_KINDS = (
    "empty", "nul_bytes", "control_chars", "bad_utf8_cesu_surrogate", "truncated_json_10",
    "nested_object_10000", "nested_array_10000", "lone_high_surrogate", "surrogate_in_id",
    "escaped_nul_in_id", "not_an_object_[1, 2,", "wrong_type_id_list", "wrong_type_title_number",
    "wrong_type_text_object", "wrong_type_published_at_true", "boilerplate_only", "text_5mb",
    "id_900kb", "url_900kb", "source_900kb", "title_900kb", "html_200k_attributes",
    "html_div_100k_deep", "html_b_100k_deep", "html_table_30k_deep", "html_lt_900k",
)


def hostile_payloads(count: int, seed: int = 17) -> list[Hostile]:
    """``count`` hostile messages keyed ``hostile-<n>``: every distinct shape once (only
    ``SHORT_KINDS`` when ``count`` is smaller than the number of shapes), then seeded random
    bytes and truncated JSON up to ``count``."""
    rng = random.Random(seed)
    kinds = _kinds(rng)
    if count < len(kinds):  # a short run: one or two of every family
        by_kind = {k[0]: k for k in kinds}
        kinds = [by_kind[name] for name in SHORT_KINDS][:count]
    out = [Hostile(f"hostile-{i}".encode(), value, kind, expect, reasons)
           for i, (kind, value, expect, reasons) in enumerate(kinds)]
    good = orjson.dumps(_article(rng))
    while len(out) < count:
        i = len(out)
        if i % 2:
            size = rng.choice((1, 7, 64, 512, 4096, 65536))
            value = rng.randbytes(size)
            out.append(Hostile(f"hostile-{i}".encode(), value, f"random_bytes_{size}",
                               reasons=("binary", "bad_encoding", "empty_body",
                                        "malformed_json", "not_an_object")))
        else:
            cut = rng.randrange(1, len(good) - 1)
            out.append(Hostile(f"hostile-{i}".encode(), good[:cut], f"truncated_json_{cut}",
                               reasons=("malformed_json",)))
    return out


# ------------------------------------------------------------------------ watch cases ---

@dataclass
class WatchCase:
    """One watch definition. ``channel`` is ``http`` (``body`` is the raw POST body, or
    ``fields`` as JSON; ``auth`` False sends no token) or ``cli`` (``argv`` after ``watch
    add``). ``expect``: ``accept``, ``refuse`` or ``either``; ``name`` is the name it would
    be stored under (for the registry check), when it has one."""

    channel: str
    label: str  # fields go out as JSON via the standard library (big integers, lone surrogates)
    expect: str
    fields: dict[str, Any] | None = None
    body: bytes | None = None
    argv: list[str] | None = None
    auth: bool = True
    name: str | None = None
    cli_exit: int = 1  # the exit code a refusal must have (2: click's own type errors)


def _phrase_query(chars: int) -> str:
    """A valid query of exactly ``chars`` characters (>= 40): quoted phrases of rare words,
    ORed, padded with inner spaces; well under 50 terms and 16 words a phrase."""
    words = [f"zq{_base36(i)}x" for i in range(400)]
    parts: list[str] = []
    i = 0
    while True:
        phrase = '"' + " ".join(words[i:i + 8]) + '"'
        candidate = " OR ".join([*parts, phrase])
        if len(candidate) > chars - 10 or len(parts) >= 40:
            break
        parts.append(phrase)
        i += 8
    query = " OR ".join(parts)
    return query.replace(" OR ", " " * (chars - len(query) + 1) + "OR ", 1)


def watch_cases(count: int | None, *, allow_host: str, cli_share: float = 0.3,
                seed: int = 23) -> list[WatchCase]:
    """Pathological watch definitions: all of them (``count`` None or at least their number:
    seeded absurd rate limits fill up to ``count``), or an even sample of ``count`` with a
    ``cli_share`` of them on the CLI. Names are unique per run."""
    rng = random.Random(seed)
    tag = f"{rng.randrange(16**6):06x}"
    n = iter(range(10**6))

    def name(label: str) -> str:
        return f"fault {tag} {next(n)} {label}"

    nomatch = f"zzq{tag}x"  # matches no article: accepted webhooks never fire
    long_name = f"fault {tag} limit " + "n" * 200
    cases: list[WatchCase] = []

    def http(label: str, expect: str, **fields: Any) -> None:
        cases.append(WatchCase("http", label, expect, fields=fields,
                               name=fields.get("name") if isinstance(fields.get("name"), str)
                               else None))

    def raw(label: str, body: bytes, expect: str = "refuse", auth: bool = True) -> None:
        cases.append(WatchCase("http", label, expect, body=body, auth=auth))

    def cli(label: str, expect: str, argv: list[str], cli_exit: int = 1) -> None:
        cases.append(WatchCase("cli", label, expect, argv=argv, name=argv[0], cli_exit=cli_exit))

    # --- names: every limit, control characters
    http("name at 200 chars", "accept", name=long_name[:200], query=nomatch)
    http("name 201 chars", "refuse", name=long_name[:201], query=nomatch)
    http("name 10,000 chars", "refuse", name="n" * 10_000, query=nomatch)
    http("name padded to 200 + spaces", "accept", name="   " + name("pad").ljust(200)[:200] + "  ",
         query=nomatch)
    cli("cli name 201 chars", "refuse", [long_name[:201] + "x", nomatch])
    cli("cli name at 200 chars", "accept", [long_name[:199] + "c", nomatch])
    for label, ch in (("NUL", "\x00"), ("tab", "\t"), ("newline", "\n"), ("escape", "\x1b"),
                      ("DEL", "\x7f"), ("C1", "\x85"), ("line separator", "\u2028"),
                      ("lone surrogate", "\ud800")):
        http(f"name with {label}", "refuse", name=name("ctl") + ch + "x", query=nomatch)
        http(f"query with {label}", "refuse", name=name("ctlq"), query=nomatch + ch + " y")
        if ch not in ("\x00", "\ud800"):  # argv cannot carry NUL or a lone surrogate
            cli(f"cli name with {label}", "refuse", [name("ctl") + ch + "x", nomatch])
    for label, value in (("empty", ""), ("spaces", "     "), ("punctuation", "!!! ??? ..."),
                         ("number", 42), ("null", None), ("list", ["a"]), ("object", {"a": 1}),
                         ("true", True)):
        http(f"name {label}", "refuse", name=value, query=nomatch)
    http("unicode name", "accept", name=name("Ünïcödé ñews ✓"), query=nomatch)
    http("emoji name", "either", name="🔥🔥🔥 " + tag, query=nomatch)
    cli("cli empty name", "refuse", ["", nomatch])
    cli("cli punctuation name", "refuse", ["!!! ...", nomatch])
    # --- queries: every limit of the language
    http("query at 1000 chars", "accept", name=name("q1000"), query=_phrase_query(1000))
    http("query 1001 chars", "refuse", name=name("q1001"), query=_phrase_query(1001))
    http("query 60 KB", "refuse", name=name("q60k"), query="a " * 30_000)
    cli("cli query 1001 chars", "refuse", [name("cq1001"), _phrase_query(1001)])
    cli("cli query at 1000 chars", "accept", [name("cq1000"), _phrase_query(1000)])
    terms = [f"{nomatch}{_base36(i)}" for i in range(60)]
    http("50 terms", "accept", name=name("t50"), query=" OR ".join(terms[:50]))
    http("51 terms", "refuse", name=name("t51"), query=" OR ".join(terms[:51]))
    cli("cli 51 terms", "refuse", [name("ct51"), " OR ".join(terms[:51])])
    http("8 nested groups", "accept", name=name("d8"), query="(" * 8 + nomatch + ")" * 8)
    http("9 nested groups", "refuse", name=name("d9"), query="(" * 9 + nomatch + ")" * 9)
    http("10,000 nested groups", "refuse", name=name("d10k"), query="(" * 10_000 + "a" + ")" * 10_000)
    cli("cli 9 nested groups", "refuse", [name("cd9"), "(" * 9 + nomatch + ")" * 9])
    phrase = [f"{nomatch}{_base36(i)}" for i in range(17)]
    http("phrase of 16 words", "accept", name=name("p16"), query='"' + " ".join(phrase[:16]) + '"')
    http("phrase of 17 words", "refuse", name=name("p17"), query='"' + " ".join(phrase) + '"')
    http("NEAR/50", "accept", name=name("n50"), query=f"{nomatch} NEAR/50 {nomatch}b")
    http("NEAR/51", "refuse", name=name("n51"), query=f"{nomatch} NEAR/51 {nomatch}b")
    http("NEAR/99999999999999999999", "refuse", name=name("nhuge"),
         query=f"a NEAR/{'9' * 20} b")
    for label, query in (("bare NOT", f"NOT {nomatch}"), ("unbalanced (", f"(({nomatch}"),
                         ("unbalanced )", f"{nomatch})"), ("empty quotes", '""'),
                         ("only operators", "AND OR NOT"), ("short wildcard", "ab*"),
                         ("lone wildcard", "*"), ("scope only", "title:"),
                         ("unknown scope", f"bogus:{nomatch}"), ("empty query", ""),
                         ("NOT NOT", f"{nomatch} NOT NOT x"), ("trailing OR", f"{nomatch} OR"),
                         ("unclosed quote", f'"{nomatch}'), ("NEAR without number", "a NEAR/ b"),
                         ("NEAR/0", "a NEAR/0 b"), ("a OR NOT b", f"{nomatch} OR NOT b")):
        http(f"query {label}", "either" if label in ("unknown scope", "NEAR/0", "NOT NOT")
             else "refuse",
             name=name(label), query=query)
    for label, query in (("bare NOT", f"NOT {nomatch}"), ("unbalanced (", f"(({nomatch}"),
                         ("short wildcard", "ab*")):
        cli(f"cli query {label}", "refuse", [name(label), query])
    for label, value in (("number", 7), ("list", ["a"]), ("object", {}), ("true", True)):
        http(f"query {label}", "refuse", name=name(f"qt{label}"), query=value)
    # --- webhooks
    bad_hooks = [
        ("port 99999", "http://host.example:99999/"), ("port 0", "http://host.example:0/"),
        ("port +80", "http://host.example:+80/"), ("port letters", "http://host.example:http/"),
        ("broken IPv6", "http://[::1/"), ("not IPv6 in brackets", "http://[zz::1]/"),
        ("loopback", "http://127.0.0.1/hook"), ("localhost", "http://localhost:8080/"),
        ("private 10/8", "http://10.0.0.1/"), ("private 192.168", "http://192.168.1.1/"),
        ("private 172.16", "http://172.16.0.5/"), ("link-local metadata",
                                                   "http://169.254.169.254/latest/meta-data/"),
        ("CGNAT", "http://100.64.0.1/"), ("multicast", "http://224.0.0.1/"),
        ("0.0.0.0", "http://0.0.0.0:80/"), ("IPv6 loopback", "http://[::1]:8080/"),
        ("IPv4-mapped loopback", "http://[::ffff:127.0.0.1]/"),
        ("decimal loopback", "http://2130706433/"), ("hex loopback", "http://0x7f000001/"),
        ("ftp scheme", "ftp://host.example/"), ("javascript", "javascript:alert(1)"),
        ("file scheme", "file:///etc/passwd"), ("no host", "http:///path"),
        ("empty", ""), ("spaces", "http://exa mple.com/"), ("backslash", "http:\\\\evil.example"),
        ("double @", "http://a@b@host.example/"), ("empty label", "http://a..example/"),
        ("label 64", "http://" + "l" * 64 + ".example/"),
        ("host 254", "http://" + ".".join(["h" * 50] * 5) + ".exam/"),
        ("URL 2049", "https://host.example/" + "p" * 2030), ("URL 1 MB (a body over 64 KiB)", "https://h.example/"
                                                            + "p" * 1_000_000),
        ("unresolvable", "https://no-such-host.invalid/hook"),
        ("NUL", "http://host.example/\x00"), ("newline", "http://host.example/\nX: y"),
        ("port overflow", "http://host.example:99999999999999999999/"),
    ]
    for i, (label, url) in enumerate(bad_hooks):
        http(f"webhook {label}", "refuse", name=name(f"wh{i}"), query=nomatch, webhook_url=url)
        if i % 3 == 0 and "\x00" not in url and len(url) < 100_000 and url:
            cli(f"cli webhook {label}", "refuse", [name(f"cwh{i}"), nomatch, "--webhook", url])
    for label, value in (("number", 80), ("list", ["http://x/"]), ("true", True)):
        http(f"webhook {label}", "refuse", name=name(f"wht{label}"), query=nomatch,
             webhook_url=value)
    http("webhook allowed host", "accept", name=name("whok"), query=nomatch,
         webhook_url=f"http://{allow_host}:9/hook")
    cli("cli webhook allowed host", "accept", [name("cwhok"), nomatch, "--webhook",
                                               f"http://{allow_host}:9/hook"])
    # --- rate limits
    limits: tuple[tuple[str, Any, str], ...] = (
        ("0", 0, "refuse"), ("-1", -1, "refuse"), ("1", 1, "accept"),
        ("1,000,000", 1_000_000, "accept"), ("1,000,001", 1_000_001, "refuse"),
        ("2**63", 2**63, "refuse"), ("-(2**63)", -(2**63), "refuse"),
        ("10**400", 10**400, "refuse"), ("true", True, "refuse"), ("false", False, "refuse"),
        ("1.5", 1.5, "refuse"), ("1e308", 1e308, "refuse"), ('"10"', "10", "refuse"),
        ("list", [10], "refuse"), ("null", None, "accept"))
    for label, value, expect in limits:
        http(f"rate limit {label}", expect, name=name(f"rl{label}"), query=nomatch,
             rate_limit=value)
    for label, arg, expect, code in (("0", "0", "refuse", 1), ("-1", "-1", "refuse", 1),
                                       ("2**63", str(2**63), "refuse", 1),
                                       ("true", "true", "refuse", 2), ("1.5", "1.5", "refuse", 2),
                                       ("1", "1", "accept", 0)):
        cli(f"cli rate limit {label}", expect, [name(f"crl{label}"), nomatch,
                                                "--rate-limit", arg], cli_exit=code)
    # --- bodies that are not what the API takes
    raw("body 64 KiB + 1", orjson.dumps({"name": name("big"), "query": nomatch,
                                         "pad": "p" * 65_536}))
    raw("body 10 MB", b'{"name": "big", "pad": "' + b"p" * 10_000_000 + b'"}')
    raw("body nested 100,000", b'{"name":' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    raw("body not JSON", b"name=x&query=y")
    raw("body invalid UTF-8", b'{"name": "\xff\xfe"}')
    raw("body JSON array", b'[{"name": "x"}]')
    raw("body JSON string", b'"name"')
    raw("body empty", b"")
    raw("body no name", b'{"query": "x"}')
    raw("body lone surrogate", b'{"name": "\\ud800 x"}')
    raw("backfill not a bool", orjson.dumps({"name": name("bf"), "backfill": "yes"}))
    raw("no token", orjson.dumps({"name": name("noauth"), "query": nomatch}), auth=False)
    http("backfill true", "accept", name=name("bftrue"), query=nomatch, backfill=True)
    http("extra fields", "accept", name=name("extra"), query=nomatch, id="forged", created_at=-1,
         unknown={"a": [1, 2]})
    # --- fill to ``count`` with seeded mixes of the shapes above
    http_made, cli_made = [c for c in cases if c.channel == "http"], [c for c in cases
                                                                     if c.channel == "cli"]
    if count is None:
        return cases
    want_cli = max(1, round(count * cli_share))
    if count < len(cases):  # short: an even sample of each channel
        pick_cli = [cli_made[int(i * len(cli_made) / want_cli)]
                    for i in range(min(want_cli, len(cli_made)))]
        want_http = count - len(pick_cli)
        pick_http = [http_made[int(i * len(http_made) / want_http)] for i in range(want_http)]
        return pick_http + pick_cli
    while len(cases) < count:
        i = len(cases)
        absurd: Any = rng.choice([0, -5, 2**64, True, "x", 1_000_001])
        http(f"fill rate limit {absurd!r}", "refuse", name=name(f"fill{i}"), query=nomatch,
             rate_limit=absurd)
    return cases


# ---------------------------------------------------------------------------- HTTP load ---

REQUEST_TIMEOUT = 30.0


@dataclass
class LoadStats:
    statuses: Counter[str] = field(default_factory=Counter)
    per_path: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    loris_opened: int = 0
    loris_closed_by_server: int = 0
    loris_statuses: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)

        def pct(q: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(len(lat) * q))], 4) if lat else None

        return {"seconds": round(self.seconds, 2), "served": sum(self.statuses.values()),
                "statuses": dict(self.statuses), "per_path": dict(self.per_path),
                "http_5xx": sum(v for k, v in self.statuses.items() if k.startswith("5"))
                + sum(v for k, v in self.loris_statuses.items() if k.startswith("5")),
                "p50_s": pct(0.5), "p99_s": pct(0.99), "max_s": lat[-1] if lat else None,
                "errors": dict(self.errors),
                "loris": {"opened": self.loris_opened,
                          "closed_by_server": self.loris_closed_by_server,
                          "statuses": dict(self.loris_statuses)}}


async def _client(port: int, paths: list[str], index: int, stop: asyncio.Event,
                  st: LoadStats) -> None:
    turn = index
    while not stop.is_set():
        writer = None
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port, limit=1 << 24), 10)
            while not stop.is_set():
                path = paths[turn % len(paths)]
                turn += 1
                t0 = time.perf_counter()
                writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
                status, keep = await asyncio.wait_for(read_response(reader), REQUEST_TIMEOUT)
                st.latencies.append(time.perf_counter() - t0)
                st.statuses[str(status)] += 1
                st.per_path[path] += 1
                if not keep:
                    break
        except TimeoutError:
            st.errors["timeout"] += 1
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError,
                IndexError) as exc:
            st.errors[type(exc).__name__] += 1
            await asyncio.sleep(0.05)
        finally:
            if writer is not None:
                writer.close()


async def _loris(port: int, stop: asyncio.Event, st: LoadStats, interval: float) -> None:
    """A request whose headers never end: one more byte every ``interval`` seconds; a new
    connection when the server closes it."""
    pad = b"X-Slow-Loris: " + b"z" * 50 + b"\r\n"
    while not stop.is_set():
        writer = None
        reply: asyncio.Future[bytes] | None = None
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
            st.loris_opened += 1
            writer.write(b"GET /watches/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            reply = asyncio.ensure_future(reader.read(65536))
            sent = 0
            while not stop.is_set():
                done, _ = await asyncio.wait([reply], timeout=interval)
                if done:
                    data = reply.result()
                    st.loris_closed_by_server += 1
                    if data.startswith(b"HTTP/"):
                        st.loris_statuses[data.split(b" ", 2)[1].decode("latin-1")] += 1
                    break
                writer.write(pad[sent % len(pad):sent % len(pad) + 1])
                sent += 1
        except TimeoutError:
            st.errors["loris_connect_timeout"] += 1
        except (OSError, ValueError) as exc:
            st.errors[f"loris_{type(exc).__name__}"] += 1
            await asyncio.sleep(0.1)
        finally:
            if reply is not None and not reply.done():
                reply.cancel()
            if writer is not None:
                writer.close()


async def hammer(port: int, *, clients: int, loris: int, paths: list[str], max_seconds: float,
                 loris_interval: float = 1.0) -> LoadStats:
    """``clients`` keep-alive connections sending GETs back to back (cycling ``paths``) and
    ``loris`` slow-loris connections, until a line arrives on stdin or ``max_seconds``."""
    st = LoadStats()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.run_in_executor(None, sys.stdin.readline).add_done_callback(lambda _: stop.set())
    loop.call_later(max_seconds, stop.set)
    t0 = time.perf_counter()
    tasks = [asyncio.create_task(_client(port, paths, i, stop, st)) for i in range(clients)]
    tasks += [asyncio.create_task(_loris(port, stop, st, loris_interval)) for _ in range(loris)]
    await stop.wait()
    st.seconds = time.perf_counter() - t0
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return st


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="the HTTP load process of bench/faults.py")
    ap.add_argument("--http-load", type=int, required=True, metavar="PORT")
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--loris", type=int, default=200)
    ap.add_argument("--paths", default="/metrics,/watches/,/healthz")
    ap.add_argument("--loris-interval", type=float, default=1.0)
    ap.add_argument("--max-seconds", type=float, default=120.0)
    args = ap.parse_args(argv)
    st = asyncio.run(hammer(args.http_load, clients=args.clients, loris=args.loris,
                            paths=args.paths.split(","), max_seconds=args.max_seconds,
                            loris_interval=args.loris_interval))
    print(json.dumps(st.summary()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
