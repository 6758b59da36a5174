"""Score the clean stage's HTML extraction, and trafilatura's beside it, on pages with known answers.

    .venv/bin/python bench/extract_bench.py [FOLDER] [--repeats 20] [--json PATH]
                                            [--no-trafilatura] [--show PAGE]

FOLDER (default ``../shared/data/feeds/pages`` beside the repository, read in place, never
copied) holds ``X.html`` pages with their answers: ``X.txt`` the expected body, ``X.json``
the expected metadata (newspaper4k's layout: ``title``, ``publish_date``, ``authors``,
``canonical_link``; ``url`` is the address the page was fetched from, not an answer), and
any ``<prefix>realworld_tests.py`` (trafilatura's test module): its ``MOCK_PAGES`` maps a URL
to a page saved as ``<prefix><file>``, and its asserts are read as text (AST, never
imported) for snippets that must be in or must not be in the txt output
(``assert "..." in result`` after ``result = do_load_page(URL)``; an ``if xmloutput is
False:`` block counts, other conditions do not) and for metadata (``metadata.title ==``,
``"..." in metadata.title``, ``.startswith``/``.endswith``, ``metadata.date ==``,
``metadata.author ==``, ``metadata.url ==``; an assert whose line comments that the value is
"actually" something else is left out). A page is scored when it has any of these.

Extractors: wirewatch is ``agents.clean.core.clean(raw bytes)`` as the clean agent calls it
on a raw HTML message (a key and a received time change neither text nor metadata);
trafilatura (when installed) is ``trafilatura.extract(html)`` with default settings for the
body (txt output, comments included as by default), the same with ``favor_precision=True``
for the precision column, and ``bare_extraction(html, with_metadata=True)`` for title,
date, author and URL. No extractor is given the page's URL.

Scores:

* body: bag-of-words precision / recall / F1 of the extracted text against ``X.txt``.
  Tokens are ``\\w+`` runs of the lower-cased text; the overlap is the multiset
  intersection (sum over words of the smaller count). P = overlap / extracted tokens,
  R = overlap / expected tokens, F1 their harmonic mean (two empty texts score 1, one empty
  text 0). Macro: the mean over pages with an expected body.
* snippets: the share of wanted snippets found in the extracted text, and of unwanted ones
  absent, whitespace collapsed on both sides; summed over pages, outside the token macro.
* title: "=" exact after whitespace normalisation (for a fragment assert, the assert as
  written holds); "~" the expected title or fragment is contained in the extracted title,
  case-folded. Counted over pages with an expected title.
* date: day precision. Both sides are read as ISO 8601; they match when their calendar
  days agree as written or, both carrying an offset, in UTC. Over pages with a date.
* authors: every expected name (case-folded, punctuation dropped) appears in the extracted
  author string. "n/a" for an extractor without authors (``Article`` has no such field
  yet; the bench reads ``Article.authors`` once it exists). Over pages with authors.
* url: the canonical URL, scheme and host lower-cased, fragment and a trailing "/" dropped,
  equal to the expected one. Over pages with an expected canonical URL.
* ms: the median of ``--repeats`` timed calls after one warm-up: the whole ``clean()``
  (language detection included) against one ``bare_extraction(with_metadata=True)`` (body
  and metadata in one call, as ``clean()`` gives). The macro line gives the mean of the
  per-page medians.

``--show PAGE`` (a page name or a unique part of it) prints, for wirewatch on that page,
the kept tokens that are not expected (clutter, most frequent first), the expected tokens it
missed, and the paragraphs behind both: the kept lines whose words do not run in the
expected text, and the expected lines it dropped (the longest first to be listed). A page
without ``X.txt`` shows its snippets, then the same against trafilatura's text, which
stands in as a reference but is no answer.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import logging
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a plain script from a checkout, without installing

from agents.clean.core import clean  # noqa: E402
from streams.errors import RejectedInput  # noqa: E402
from streams.records import Article  # noqa: E402

PAGES = REPO.parent / "shared" / "data" / "feeds" / "pages"  # ../shared beside the repo
TEST_MODULE_SUFFIX = "realworld_tests.py"
WIREWATCH, TRAFILATURA, PRECISION = "wirewatch", "trafilatura", "trafilatura favor_precision"
EXTRACTORS = (WIREWATCH, TRAFILATURA, PRECISION)
# The pipeline's defaults (streams.settings): WIREWATCH_MAX_MESSAGE_BYTES, _MAX_BODY_CHARS.
MAX_BYTES, MAX_BODY_CHARS = 1_048_576, 200_000
SHOW_TOKENS = 40
SHOW_LINES = 25

_TOKEN = re.compile(r"\w+")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


# --------------------------------------------------------------------------- scores


def tokens(text: str) -> list[str]:
    """Lower-cased ``\\w+`` runs: the unit of every body score."""
    return _TOKEN.findall(text.lower())


def token_prf(extracted: str, expected: str) -> tuple[float, float, float]:
    """Bag-of-words precision, recall and F1 of ``extracted`` against ``expected``."""
    got, want = Counter(tokens(extracted)), Counter(tokens(expected))
    if not got and not want:
        return 1.0, 1.0, 1.0
    overlap = sum((got & want).values())
    precision = overlap / sum(got.values()) if got else 0.0
    recall = overlap / sum(want.values()) if want else 0.0
    f1 = 2 * precision * recall / (precision + recall) if overlap else 0.0
    return precision, recall, f1


def _spaces(text: str) -> str:
    return " ".join(text.split())


def title_match(extracted: str | None, op: str, expected: str) -> tuple[bool, bool]:
    """(exact, contains) for an expected title: ``op`` is "==" for a whole title, or "in",
    "startswith", "endswith" for a fragment that an assert checks."""
    if not extracted:
        return False, False
    got, want = _spaces(extracted), _spaces(expected)
    exact = {
        "==": got == want, "in": want in got,
        "startswith": got.startswith(want), "endswith": got.endswith(want),
    }[op]  # fmt: skip
    return exact, want.casefold() in got.casefold()


def _days(value: str) -> set[str]:
    """The calendar day of an ISO date as written, and in UTC when it carries an offset."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        found = _DAY.match(value.strip())
        return {found.group()} if found else set()
    days = {moment.date().isoformat()}
    if moment.tzinfo is not None:
        days.add(moment.astimezone(UTC).date().isoformat())
    return days


def date_match(extracted: str | None, expected: str) -> bool:
    return bool(extracted) and bool(_days(extracted or "") & _days(expected))


def _name_words(name: str) -> str:
    return " ".join(_TOKEN.findall(name.casefold()))


def authors_match(extracted: str | None, expected: list[str]) -> bool:
    """Every expected name appears in the extracted author string ("A; B" or "A, B")."""
    got = f" {_name_words(extracted or '')} "
    return bool(extracted) and all(f" {_name_words(name)} " in got for name in expected)


def _url_key(url: str) -> str:
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url.strip()
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


def url_match(extracted: str | None, expected: str) -> bool:
    return bool(extracted) and _url_key(extracted or "") == _url_key(expected)


def snippets_found(text: str, snippets: list[str]) -> list[bool]:
    flat = _spaces(text)
    return [_spaces(snippet) in flat for snippet in snippets]


# --------------------------------------------------------------------------- expectations


@dataclass
class Expected:
    """What a page should give; None or empty where the folder does not say."""

    name: str
    html: Path
    body: str | None = None
    title: tuple[str, str] | None = None  # (op, text): op "==", "in", "startswith", "endswith"
    date: str | None = None
    authors: list[str] = field(default_factory=list)
    url: str | None = None
    wanted: list[str] = field(default_factory=list)
    unwanted: list[str] = field(default_factory=list)

    def has_any(self) -> bool:
        return any((self.body is not None, self.title, self.date, self.authors, self.url,
                    self.wanted, self.unwanted))


@dataclass
class _Asserts:
    wanted: list[str] = field(default_factory=list)
    unwanted: list[str] = field(default_factory=list)
    meta: dict[str, tuple[str, str]] = field(default_factory=dict)  # field -> (op, value)


def _literal(node: ast.AST, names: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return names.get(node.id)
    return None


def _metadata_field(node: ast.AST) -> str | None:
    """"title" for ``metadata.title``."""
    if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id == "metadata"):
        return node.attr
    return None


def _txt_branch(test: ast.AST) -> bool | None:
    """Which branch of ``if`` the plain-text run of test_extract takes (xmloutput and
    formatting both False), or None when the condition is about something else."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        inner = _txt_branch(test.operand)
        return None if inner is None else not inner
    if isinstance(test, ast.Name) and test.id in ("xmloutput", "formatting"):
        return False
    if (
        isinstance(test, ast.Compare) and len(test.ops) == 1
        and isinstance(test.left, ast.Name) and test.left.id in ("xmloutput", "formatting")
        and isinstance(test.ops[0], ast.Is | ast.Eq)
        and isinstance(test.comparators[0], ast.Constant)
    ):  # fmt: skip
        return test.comparators[0].value is False
    return None


class _TestReader:
    """Walks the test functions' statements in order, tracking which page ``result`` and
    ``metadata`` were loaded from, and files each assert under that page's URL."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.found: dict[str, _Asserts] = {}
        self.names: dict[str, str] = {}
        self.result_url: str | None = None
        self.meta_url: str | None = None

    def function(self, body: list[ast.stmt]) -> None:
        self.names, self.result_url, self.meta_url = {}, None, None
        self.block(body)

    def block(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
                self.assign(stmt.targets[0], stmt.value)
            elif isinstance(stmt, ast.If):
                branch = _txt_branch(stmt.test)
                if branch is not None:
                    self.block(stmt.body if branch else stmt.orelse)
            elif isinstance(stmt, ast.Assert):
                self.assertion(stmt)

    def assign(self, target: ast.expr, value: ast.expr) -> None:
        if not isinstance(target, ast.Name):
            return
        text = _literal(value, self.names)
        if text is not None:
            self.names[target.id] = text
        elif target.id == "result":
            self.result_url = self.loaded_url(value, ("do_load_page", "load_mock_page"))
        elif target.id == "metadata":
            self.meta_url = self.loaded_url(value, ("extract_metadata", "load_mock_page_meta"))

    def loaded_url(self, call: ast.expr, loaders: tuple[str, ...]) -> str | None:
        """The URL of ``loader(URL)`` or ``extract_metadata(loader(URL))``, default options
        only (another output format or formatting makes other text)."""
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
            return None
        if call.func.id not in loaders or call.keywords or len(call.args) != 1:
            return None
        arg = call.args[0]
        if isinstance(arg, ast.Call):
            return self.loaded_url(arg, loaders)
        return _literal(arg, self.names)

    def page(self, url: str) -> _Asserts:
        return self.found.setdefault(url, _Asserts())

    def assertion(self, stmt: ast.Assert) -> None:
        line = self.lines[stmt.lineno - 1]
        if "#" in line and "actually" in line.split("#", 1)[1]:
            return  # the test's own note: the asserted value is not the page's truth
        test = stmt.test
        if isinstance(test, ast.Compare) and len(test.ops) == 1:
            left, op, right = test.left, test.ops[0], test.comparators[0]
            if isinstance(op, ast.In | ast.NotIn) and (text := _literal(left, {})) is not None:
                if isinstance(right, ast.Name) and right.id == "result" and self.result_url:
                    snippets = self.page(self.result_url)
                    (snippets.wanted if isinstance(op, ast.In) else snippets.unwanted).append(text)
                elif _metadata_field(right) == "title" and isinstance(op, ast.In) and self.meta_url:
                    self.page(self.meta_url).meta["title"] = ("in", text)
            elif isinstance(op, ast.Eq) and (name := _metadata_field(left)) and self.meta_url:
                value = _literal(right, self.names)
                if value is not None:
                    self.page(self.meta_url).meta[name] = ("==", value)
        elif (
            isinstance(test, ast.Call) and isinstance(test.func, ast.Attribute)
            and test.func.attr in ("startswith", "endswith")
            and _metadata_field(test.func.value) == "title" and len(test.args) == 1
            and (text := _literal(test.args[0], {})) is not None and self.meta_url
        ):  # fmt: skip
            self.page(self.meta_url).meta["title"] = (test.func.attr, text)


def read_test_module(path: Path) -> dict[str, _Asserts]:
    """Asserts per saved page file name (``MOCK_PAGES`` value) of a trafilatura-style test
    module, read as text: importing it would need trafilatura's test helpers."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    mock_pages: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "MOCK_PAGES" for target in node.targets
        ):
            mock_pages = ast.literal_eval(node.value)
    reader = _TestReader(source.splitlines())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            reader.function(node.body)
    return {mock_pages[url]: found for url, found in reader.found.items() if url in mock_pages}


def _json_expectations(expected: Expected, data: dict[str, Any]) -> None:
    title = data.get("title")
    if isinstance(title, str) and title.strip():
        expected.title = ("==", title)
    for key in ("publish_date", "published_at", "date"):
        if isinstance(data.get(key), str) and data[key].strip():
            expected.date = data[key]
            break
    authors = data.get("authors")
    if isinstance(authors, str):
        authors = [authors]
    if isinstance(authors, list):
        expected.authors = [a for a in authors if isinstance(a, str) and a.strip()]
    for key in ("canonical_link", "canonical_url", "canonical"):
        if isinstance(data.get(key), str) and data[key].strip():
            expected.url = data[key]
            break


def load_expectations(folder: Path) -> tuple[list[Expected], list[str]]:
    """Every page of ``folder`` with an answer, by name; and the names of pages without."""
    by_file: dict[str, _Asserts] = {}
    for module in sorted(folder.glob(f"*{TEST_MODULE_SUFFIX}")):
        prefix = module.name[: -len(TEST_MODULE_SUFFIX)]
        for file, page_asserts in read_test_module(module).items():
            by_file[prefix + file] = page_asserts
            by_file.setdefault(file, page_asserts)
    pages: list[Expected] = []
    unscored: list[str] = []
    for html in sorted(folder.glob("*.html")):
        expected = Expected(name=html.stem, html=html)
        txt, meta = html.with_suffix(".txt"), html.with_suffix(".json")
        if txt.is_file():
            expected.body = txt.read_text(encoding="utf-8").strip()
        if meta.is_file():
            _json_expectations(expected, json.loads(meta.read_text(encoding="utf-8")))
        found = by_file.get(html.name)
        if found is not None:
            expected.wanted, expected.unwanted = list(found.wanted), list(found.unwanted)
            if "title" in found.meta and expected.title is None:
                expected.title = found.meta["title"]
            if "date" in found.meta and expected.date is None:
                expected.date = found.meta["date"][1]
            if "author" in found.meta and not expected.authors:
                expected.authors = [found.meta["author"][1]]
            if "url" in found.meta and expected.url is None:
                expected.url = found.meta["url"][1]
        if expected.has_any():
            pages.append(expected)
        else:
            unscored.append(expected.name)
    return pages, unscored


# --------------------------------------------------------------------------- extraction


@dataclass
class Extraction:
    """One extractor's output on one page. ``authors`` None: the extractor has none."""

    text: str = ""
    title: str | None = None
    date: str | None = None
    authors: str | None = None
    url: str | None = None
    ms: float | None = None
    error: str | None = None


def median_ms(call: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``call`` over ``repeats`` runs, after one warm-up run."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        call()
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1e6


_ARTICLE_FIELDS = frozenset(f.name for f in dataclasses.fields(Article))


def _joined(value: object) -> str | None:
    if isinstance(value, list | tuple):
        return "; ".join(str(v) for v in value) or None
    return str(value) if value else None


def run_wirewatch(raw: bytes, repeats: int) -> Extraction:
    def call() -> Article:
        return clean(raw, max_bytes=MAX_BYTES, max_body_chars=MAX_BODY_CHARS)

    try:
        article = call()
    except RejectedInput as exc:
        return Extraction(error=f"{type(exc).__name__}: {exc}")
    # Authors arrive with issue 19; until then the column reads n/a.
    has_authors = "authors" in _ARTICLE_FIELDS
    authors = (_joined(getattr(article, "authors", None)) or "") if has_authors else None
    return Extraction(
        text=article.text, title=article.title, date=article.published_at, authors=authors,
        url=article.url, ms=median_ms(call, repeats) if repeats else None,
    )  # fmt: skip


def load_trafilatura() -> Any | None:
    try:
        import trafilatura  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    # It logs "discarding data" and the like at WARNING for pages it rejects: the table says it.
    logging.getLogger("trafilatura").setLevel(logging.ERROR)
    return trafilatura


def run_trafilatura(raw: bytes, repeats: int, traf: Any) -> tuple[Extraction, Extraction]:
    """(default, favor_precision): the bodies from ``extract``; metadata and time from one
    ``bare_extraction(with_metadata=True)``, which the precision column shares."""

    def call() -> Any:
        return traf.bare_extraction(raw, with_metadata=True)

    doc = call()
    main = Extraction(
        text=traf.extract(raw) or "",
        title=getattr(doc, "title", None), date=getattr(doc, "date", None),
        authors=getattr(doc, "author", None) or "", url=getattr(doc, "url", None),
        ms=median_ms(call, repeats) if repeats else None,
    )  # fmt: skip
    precise = Extraction(text=traf.extract(raw, favor_precision=True) or "")
    return main, precise


# --------------------------------------------------------------------------- results


@dataclass
class Score:
    """One extractor's scores on one page: None where the page has no answer for it."""

    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    title_exact: bool | None = None
    title_contains: bool | None = None
    date: bool | None = None
    authors: bool | None = None  # also None when the extractor has no authors
    url: bool | None = None
    wanted_found: list[bool] = field(default_factory=list)
    unwanted_absent: list[bool] = field(default_factory=list)
    ms: float | None = None
    error: str | None = None


def score(expected: Expected, got: Extraction, metadata: bool = True) -> Score:
    result = Score(ms=got.ms, error=got.error)
    if expected.body is not None:
        result.precision, result.recall, result.f1 = token_prf(got.text, expected.body)
    result.wanted_found = snippets_found(got.text, expected.wanted)
    result.unwanted_absent = [not hit for hit in snippets_found(got.text, expected.unwanted)]
    if not metadata:
        return result
    if expected.title is not None:
        result.title_exact, result.title_contains = title_match(got.title, *expected.title)
    if expected.date is not None:
        result.date = date_match(got.date, expected.date)
    if expected.authors and got.authors is not None:
        result.authors = authors_match(got.authors, expected.authors)
    if expected.url is not None:
        result.url = url_match(got.url, expected.url)
    return result


@dataclass
class PageResult:
    expected: Expected
    scores: dict[str, Score]  # by extractor; absent when it did not run
    outputs: dict[str, Extraction]


def evaluate(folder: Path = PAGES, repeats: int = 20, use_trafilatura: bool = True,
             ) -> tuple[list[PageResult], list[str], str | None]:
    """Score every page with an answer; returns the results, the pages without answers
    and trafilatura's version (None when it did not run)."""
    pages, unscored = load_expectations(folder)
    traf = load_trafilatura() if use_trafilatura else None
    results = []
    for expected in pages:
        raw = expected.html.read_bytes()
        outputs = {WIREWATCH: run_wirewatch(raw, repeats)}
        if traf is not None:
            outputs[TRAFILATURA], outputs[PRECISION] = run_trafilatura(raw, repeats, traf)
        scores = {name: score(expected, out, metadata=name != PRECISION)
                  for name, out in outputs.items()}
        results.append(PageResult(expected, scores, outputs))
    version = getattr(traf, "__version__", "?") if traf is not None else None
    return results, unscored, version


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return statistics.fmean(kept) if kept else None


def _rate(values: Iterable[bool | None]) -> tuple[int, int]:
    kept = [v for v in values if v is not None]
    return sum(kept), len(kept)


def summarise(results: list[PageResult]) -> dict[str, dict[str, Any]]:
    """Per extractor: macro body P/R/F1 (and over how many pages), each metadata rate as
    [matches, pages], snippet totals and the mean of the per-page median ms."""
    summary: dict[str, dict[str, Any]] = {}
    for name in EXTRACTORS:
        scores = [r.scores[name] for r in results if name in r.scores]
        if not scores:
            continue
        bodies = [s for s in scores if s.f1 is not None]
        summary[name] = {
            "body_pages": len(bodies),
            "precision": _mean(s.precision for s in bodies),
            "recall": _mean(s.recall for s in bodies),
            "f1": _mean(s.f1 for s in bodies),
            "wanted_found": _rate(hit for s in scores for hit in s.wanted_found),
            "unwanted_absent": _rate(hit for s in scores for hit in s.unwanted_absent),
            "errors": sum(s.error is not None for s in scores),
        }
        if name != PRECISION:
            with_authors = name != WIREWATCH or "authors" in _ARTICLE_FIELDS
            summary[name].update({
                "title_exact": _rate(s.title_exact for s in scores),
                "title_contains": _rate(s.title_contains for s in scores),
                "date": _rate(s.date for s in scores),
                "authors": _rate(s.authors for s in scores) if with_authors else None,
                "url": _rate(s.url for s in scores),
                "ms_mean_of_medians": _mean(s.ms for s in scores),
                "ms_median_of_medians": _median(s.ms for s in scores),
            })  # fmt: skip
    return summary


# --------------------------------------------------------------------------- printing


def _num(value: float | None, width: int, digits: int = 3) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def _mark(exact: bool | None, contains: bool | None, ran: bool, has: bool) -> str:
    if not ran:
        return "-"
    if not has:
        return "."
    return "=" if exact else "~" if contains else "x"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _ratio(counts: tuple[int, int] | None) -> str:
    if counts is None:
        return "n/a"
    return f"{counts[0]}/{counts[1]}" if counts[1] else "."


def _share(counts: tuple[int, int]) -> str:
    return f"{counts[0] / counts[1]:.2f}" if counts[1] else "."


def page_table(results: list[PageResult], summary: dict[str, dict[str, Any]]) -> str:
    width = max([len("page"), len("macro (99 pages)"), *(len(r.expected.name) for r in results)])
    head = (f"{'page':<{width}}{'tokens':>7}{'ww P':>7}{'ww R':>7}{'ww F1':>7}{'tf F1':>7}"
            f"{'tfp F1':>7}{'title w/t':>11}{'date w/t':>10}{'ms w/t':>13}")
    lines = [head]
    for r in results:
        exp, ww = r.expected, r.scores[WIREWATCH]
        tf, tfp = r.scores.get(TRAFILATURA), r.scores.get(PRECISION)
        n_tokens = f"{len(tokens(exp.body)):>7}" if exp.body is not None else f"{'-':>7}"
        title = "/".join(_mark(s.title_exact if s else None, s.title_contains if s else None,
                               s is not None, exp.title is not None) for s in (ww, tf))
        date = "/".join(_mark(s.date if s else None, None, s is not None, exp.date is not None)
                        for s in (ww, tf))
        ms = f"{_ms(ww.ms)}/{_ms(tf.ms if tf else None)}"
        lines.append(
            f"{exp.name:<{width}}{n_tokens}{_num(ww.precision, 7)}{_num(ww.recall, 7)}"
            f"{_num(ww.f1, 7)}{_num(tf.f1 if tf else None, 7)}{_num(tfp.f1 if tfp else None, 7)}"
            f"{title:>11}{date:>10}{ms:>13}" + (f"  ERROR {ww.error}" if ww.error else "")
        )
    ww_sum, tf_sum = summary[WIREWATCH], summary.get(TRAFILATURA)
    tfp_sum = summary.get(PRECISION)
    label = f"macro ({ww_sum['body_pages']} pages)"
    title = "/".join(_share(s["title_exact"]) if s else "-" for s in (ww_sum, tf_sum))
    date = "/".join(_share(s["date"]) if s else "-" for s in (ww_sum, tf_sum))
    ms = "/".join(_ms(s["ms_mean_of_medians"] if s else None) for s in (ww_sum, tf_sum))
    lines.append(
        f"{label:<{width}}{'':>7}{_num(ww_sum['precision'], 7)}{_num(ww_sum['recall'], 7)}"
        f"{_num(ww_sum['f1'], 7)}{_num(tf_sum['f1'] if tf_sum else None, 7)}"
        f"{_num(tfp_sum['f1'] if tfp_sum else None, 7)}{title:>11}{date:>10}{ms:>13}"
    )
    return "\n".join(lines)


def summary_table(summary: dict[str, dict[str, Any]]) -> str:
    head = (f"{'extractor':<29}{'body P':>7}{'body R':>7}{'body F1':>8}{'title =':>9}"
            f"{'title ~':>9}{'date':>6}{'authors':>9}{'url':>6}{'wanted':>8}{'unwanted':>10}"
            f"{'ms/page':>9}")
    lines = [head]
    for name, s in summary.items():
        meta = name != PRECISION
        lines.append(
            f"{name:<29}{_num(s['precision'], 7)}{_num(s['recall'], 7)}{_num(s['f1'], 8)}"
            + (f"{_ratio(s['title_exact']):>9}{_ratio(s['title_contains']):>9}"
               f"{_ratio(s['date']):>6}{_ratio(s['authors']):>9}{_ratio(s['url']):>6}"
               if meta else f"{'':>9}{'':>9}{'':>6}{'':>9}{'':>6}")
            + f"{_ratio(s['wanted_found']):>8}{_ratio(s['unwanted_absent']):>10}"
            + (f"{_ms(s['ms_median_of_medians']):>9}" if meta else "")
        )
    return "\n".join(lines)


def snippet_table(results: list[PageResult]) -> str:
    pages = [r for r in results if r.expected.wanted or r.expected.unwanted]
    if not pages:
        return "snippets: no page in this folder has snippet asserts"
    width = max(len("page"), *(len(r.expected.name) for r in pages))
    names = [n for n in EXTRACTORS if n in pages[0].scores]
    short = {WIREWATCH: "ww", TRAFILATURA: "tf", PRECISION: "tfp"}
    head = f"{'page':<{width}}" + "".join(f"{'found ' + short[n]:>10}" for n in names)
    head += "".join(f"{'absent ' + short[n]:>11}" for n in names)
    lines = [head]
    for r in pages:
        row = f"{r.expected.name:<{width}}"
        row += "".join(f"{_ratio(_rate(r.scores[n].wanted_found)):>10}" for n in names)
        row += "".join(f"{_ratio(_rate(r.scores[n].unwanted_absent)):>11}" for n in names)
        lines.append(row)
    for r in pages:
        for n in names:
            s = r.scores[n]
            for snippet, hit in zip(r.expected.wanted, s.wanted_found, strict=True):
                if not hit:
                    lines.append(f"  {r.expected.name}: {n} misses wanted {snippet!r}")
            for snippet, ok in zip(r.expected.unwanted, s.unwanted_absent, strict=True):
                if not ok:
                    lines.append(f"  {r.expected.name}: {n} keeps unwanted {snippet!r}")
    return "\n".join(lines)


def report(results: list[PageResult], unscored: list[str], version: str | None,
           folder: Path, repeats: int, traf_requested: bool = True) -> tuple[str, dict[str, Any]]:
    summary = summarise(results)
    if version is not None:
        traf_line = f"trafilatura {version}"
    elif traf_requested:
        traf_line = ("trafilatura is not installed: its columns read '-' "
                     "(pip install trafilatura to compare)")
    else:
        traf_line = "trafilatura not run (--no-trafilatura): its columns read '-'"
    parts = [
        f"extraction on {len(results)} pages of {folder} (ms: median of {repeats} runs after "
        f"a warm-up); {traf_line}",
        page_table(results, summary),
        "columns: ww = wirewatch clean(), tf = trafilatura defaults, tfp = favor_precision; "
        "title/date: = match, ~ contains only, x miss, . no answer, - not run",
        summary_table(summary),
        "rates are matches/pages with an answer; body P/R/F1 are means over pages with a .txt; "
        "wanted/unwanted: snippets found/absent; ms/page: median of the per-page medians",
        snippet_table(results),
    ]
    if unscored:
        parts.append(f"no answer for {len(unscored)} page(s), not scored: {', '.join(unscored)}")
    for r in results:
        for name, out in r.outputs.items():
            if out.error:
                parts.append(f"{r.expected.name}: {name} rejected the page: {out.error}")
    text = "\n\n".join(parts)
    data = {
        "folder": str(folder),
        "repeats": repeats,
        "trafilatura_version": version,
        "pages": [
            {
                "page": r.expected.name,
                "expected_tokens": len(tokens(r.expected.body)) if r.expected.body is not None
                else None,
                "expected_title": r.expected.title, "expected_date": r.expected.date,
                "expected_authors": r.expected.authors, "expected_url": r.expected.url,
                **{name: dataclasses.asdict(s) for name, s in r.scores.items()},
            }
            for r in results
        ],
        "summary": summary,
        "unscored": unscored,
        "table": text,
    }  # fmt: skip
    return text, data


# --------------------------------------------------------------------------- --show


def _runs_in(line_tokens: list[str], haystack: str) -> bool:
    return bool(line_tokens) and f" {' '.join(line_tokens)} " in haystack


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if tokens(line)]


def _cut(text: str, limit: int = 110) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _diff(kept: str, reference: str, ref: str) -> list[str]:
    """Tokens and lines of ``kept`` that ``reference`` lacks (clutter), and the reverse."""
    out = []
    have, want = Counter(tokens(kept)), Counter(tokens(reference))
    for label, extra in ((f"clutter: kept, not in {ref}", have - want),
                         (f"missed: in {ref}, not kept", want - have)):
        common = extra.most_common(SHOW_TOKENS)
        out.append(f"\n{label} ({sum(extra.values())} tokens, {len(extra)} words"
                   + (f"; top {len(common)}, count after each):" if common else ")"))
        if common:
            out.append("  " + ", ".join(f"{word} {count}" for word, count in common))
    # A line counts as found when its words run, in order, in the other text.
    for label, lines, other in ((f"kept lines not in {ref}", _lines(kept), reference),
                                (f"lines in {ref} not kept", _lines(reference), kept)):
        haystack = f" {' '.join(tokens(other))} "
        stray = [line for line in lines if not _runs_in(tokens(line), haystack)]
        # The longest weigh most on the score; they are listed in page order, to find them.
        longest = set(sorted(range(len(stray)), key=lambda i: -len(tokens(stray[i])))[:SHOW_LINES])
        out.append(f"\n{label} ({len(stray)} of {len(lines)}, "
                   f"{sum(len(tokens(line)) for line in stray)} tokens"
                   + (f"; the {len(longest)} longest in page order, [tokens] first):"
                      if stray else ")"))
        out.extend(f"  [{len(tokens(line)):>3}] {_cut(line)}"
                   for i, line in enumerate(stray) if i in longest)
    return out


def show(folder: Path, page: str, use_trafilatura: bool = True) -> str:
    """Wirewatch on one page: clutter and misses, as tokens and as lines. A page without an
    expected body is compared with trafilatura's text instead, when it is installed."""
    pages, _ = load_expectations(folder)
    matches = [p for p in pages if p.name == page or p.html.name == page]
    matches = matches or [p for p in pages if page in p.name]
    if len(matches) != 1:
        names = ", ".join(p.name for p in (matches or pages))
        raise SystemExit(f"--show {page!r}: {'ambiguous' if matches else 'no such page'}; "
                         f"pages: {names}")
    expected = matches[0]
    raw = expected.html.read_bytes()
    got = run_wirewatch(raw, repeats=0)
    s = score(expected, got)
    out = [f"{expected.name}: wirewatch kept {len(tokens(got.text))} tokens in "
           f"{len(_lines(got.text))} lines"]
    if got.error:
        out.append(f"rejected: {got.error}")
    out.append(f"title {got.title!r} (expected {expected.title[1] if expected.title else None!r})")
    out.append(f"date {got.date!r} (expected {expected.date!r})")
    out.append(f"url {got.url!r} (expected {expected.url!r})")
    for snippet, hit in zip(expected.wanted, s.wanted_found, strict=True):
        out.append(f"wanted {'found' if hit else 'MISSING'}: {snippet!r}")
    flat = _spaces(got.text)
    for snippet, ok in zip(expected.unwanted, s.unwanted_absent, strict=True):
        where = flat.find(_spaces(snippet))
        context = "" if ok else f" in ...{flat[max(0, where - 60) : where + 80]}..."
        out.append(f"unwanted {'absent' if ok else 'KEPT'}: {snippet!r}{context}")
    if expected.body is not None:
        out.append(f"body P {s.precision:.3f} R {s.recall:.3f} F1 {s.f1:.3f} "
                   f"({len(tokens(expected.body))} tokens expected)")
        out.extend(_diff(got.text, expected.body, "the expected text"))
        return "\n".join(out)
    traf = load_trafilatura() if use_trafilatura else None
    if traf is None:
        out.append("no expected body (X.txt) for this page, and no trafilatura to compare with")
        return "\n".join(out)
    reference = traf.extract(raw) or ""
    p, r, f1 = token_prf(got.text, reference)
    out.append(f"no expected body (X.txt): trafilatura's default text ({len(tokens(reference))} "
               f"tokens) stands in below, a reference but not an answer; against it P {p:.3f} "
               f"R {r:.3f} F1 {f1:.3f}")
    out.extend(_diff(got.text, reference, "trafilatura's text"))
    return "\n".join(out)


# --------------------------------------------------------------------------- main


#: Hostile pages (issue 19 item 4) and the most each may cost clean(), accepted or refused.
ROBUSTNESS_BOUND_MS = 1_000.0


def hostile_pages() -> list[tuple[str, bytes]]:
    """Pages that must never crash or stall the stage: each is cleaned or refused by reason."""
    para = "<p>" + "The council approved the budget after a long debate on Tuesday. " * 8 + "</p>"
    head = "<!DOCTYPE html><html><head><title>T</title></head><body>"
    french = "<p>" + "Le conseil a approuvé le budget après un long débat mardi soir. " * 8 + "</p>"
    return [
        ("5 MB page", (head + para * (5_000_000 // len(para))).encode()),
        ("100,000 nested elements", (head + "<div>" * 100_000 + para).encode()),
        ("990 nested, then prose", (head + "<div>" * 990 + para * 500).encode()),
        ("broken markup", (head + "<div><p>" + para * 300 + "</span></b></td><p>x").encode()),
        ("scripts and styles in the body",
         (head + (para + "<script>var a = '<p>no</p>';</script><style>p{}</style>") * 300).encode()),
        ("1 MB windows-1252 declared utf-8",
         (head.replace("<head>", "<head><meta charset=utf-8>") + french * 1_800).encode("cp1252")),
    ]


def robustness(repeats: int = 3) -> str:
    """One line per hostile page: what clean() did with it and its median ms, held to
    ``ROBUSTNESS_BOUND_MS``."""
    lines = [f"{'hostile page':<34}{'outcome':>26}{'ms':>10}  bound {ROBUSTNESS_BOUND_MS:.0f} ms"]
    for name, raw in hostile_pages():
        def run(raw: bytes = raw) -> str:
            try:
                article = clean(raw, max_bytes=MAX_BYTES, max_body_chars=MAX_BODY_CHARS)
                return f"{len(article.text):,} chars kept"
            except RejectedInput as exc:
                return f"refused: {exc.reason}"
        outcome = run()
        ms = median_ms(run, repeats)
        verdict = "ok" if ms <= ROBUSTNESS_BOUND_MS else "OVER"
        lines.append(f"{name:<34}{outcome:>26}{ms:>10.1f}  {verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=PAGES,
                        help="pages with X.html + X.txt [+ X.json] (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per page")
    parser.add_argument("--json", type=Path, help="also write every number here")
    parser.add_argument("--no-trafilatura", action="store_true", help="wirewatch only")
    parser.add_argument("--show", metavar="PAGE",
                        help="wirewatch's clutter and misses on one page, instead of the table")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        parser.error(f"{args.folder} is not a folder")
    if args.show:
        print(show(args.folder, args.show, use_trafilatura=not args.no_trafilatura))
        return
    results, unscored, version = evaluate(args.folder, max(args.repeats, 1),
                                          use_trafilatura=not args.no_trafilatura)
    if not results:
        parser.error(f"no page in {args.folder} has an answer (X.txt, X.json or snippet asserts)")
    text, data = report(results, unscored, version, args.folder, max(args.repeats, 1),
                        traf_requested=not args.no_trafilatura)
    print(text)
    print()
    print(robustness())
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        print(f"\nJSON: {args.json}")


if __name__ == "__main__":
    main()
