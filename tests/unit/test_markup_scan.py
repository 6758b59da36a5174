"""The compiled markup scan (agents/clean/scan.pyx) against the regex it stands in for.

``markup_counts`` must give exactly the counts ``_check_markup`` would compute from
``_MARKUP_TOKEN``'s tokens, or None; a difference could let hostile markup past the
pre-scan. The reference below computes them from the regex, as the full check does.
"""

from __future__ import annotations

from itertools import accumulate
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.clean import core
from agents.clean.scan import markup_counts

PAGES = Path(__file__).resolve().parents[3] / "shared" / "data" / "feeds" / "pages"


def _highest(steps: list[int]) -> int:
    sums = list(accumulate(steps, initial=0))
    return max(sums) - min(sums)


def reference_counts(markup: str) -> tuple[int, ...]:
    """The counts from the regex's tokens, as _check_markup and _check_attributes use them."""
    parts = core._MARKUP_TOKEN.split(markup)
    tokens = [(name.lower(), rest) for name, rest in zip(parts[2::4], parts[3::4], strict=True) if name]
    names = [name for name, _ in tokens]
    rests = [rest for rest in parts[3::4] if rest]
    joined = " ".join(rests)

    def attributes_of(name: str) -> int:
        return sum(core._most_attributes(rest) for tag, rest in tokens if tag == name and rest)

    return (
        len(names),
        _highest([step for step in (core._DEPTH_STEP.get(n, 1) for n in names) if step]),
        _highest([core._FORMATTING_STEP[n] for n in names if n in core._FORMATTING_STEP]),
        names.count("option") + names.count("optgroup"),
        names.count("html"),
        attributes_of("html"),
        names.count("body"),
        attributes_of("body"),
        max(map(core._most_attributes, rests), default=0),
        len(rests),
        sum(map(len, rests)),
        len(joined.encode().translate(None, core._NOT_ATTRIBUTE_SEPARATOR)) - max(len(rests) - 1, 0),
        joined.count("="),
    )


def scan(markup: str) -> tuple[int, ...] | None:
    return markup_counts(markup, core._DEPTH_STEP, core._FORMATTING_STEP)


# Fragments that exercise every branch: comments, raw text and its end tags in any case,
# quoted and unquoted values holding ">" and "=", stray "<", end tags of nothing, non-ASCII.
_FRAGMENTS = [
    "<", ">", "</", "/", "=", '"', "'", " ", "\n", "\t", "\x0b", "\u3000", "x", "<!--", "-->",
    "--", "<!", "-", "div", "b", "a", "p", "li", "span", "option", "optgroup", "html", "body",
    "script", "SCRIPT", "Style", "title", "textarea", "plaintext", "noframes", "xmp", "iframe",
    "<script>", "</script>", "<style>", "</style", "<b id=1>", "</b>", "<div>", "</div>",
    "<p>", "<a href='x>y'>", '<i title="a=b">', "é", "İ", "ı", "ſ", "K", "<tıtle>", "</tİtle>",
    "<html lang=en>", "<body class=x>", "<option>", "<x-y>", "<br/>", "=\"", "='",
]


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(_FRAGMENTS), max_size=60))
def test_counts_match_the_regex_or_defer(fragments: list[str]) -> None:
    markup = "".join(fragments)
    counts = scan(markup)
    if counts is not None:
        assert counts == reference_counts(markup), markup


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from('<>/="\' !-abisptyleSCRIPT\n'), max_size=200))
def test_counts_on_dense_markup_characters(markup: str) -> None:
    counts = scan(markup)
    if counts is not None:
        assert counts == reference_counts(markup), markup


@pytest.mark.parametrize(
    "markup",
    [
        "",
        "<",
        "<!-->x<b>",
        "<!---->",
        "<script>if (a<b) {}</scripty></script><b>",
        "<SCRIPT>x</script ><p>",
        "<style>p{}",
        "<a href='>'>x</a><p x = \"1\" y=2>",
        "<div\u3000class=x>",
        "<b id=1><b id=2><b id=3></p>",
    ],
)
def test_counts_on_edge_cases(markup: str) -> None:
    assert scan(markup) == reference_counts(markup)


def test_non_ascii_tag_names_defer_to_the_regex() -> None:
    # Python's case-insensitive matching folds "ı" to "i": only the regex knows.
    assert scan("<tıtle>x</title>") is None
    assert scan("<title>x</tİtle><b>") is None


def test_real_pages_are_counted_exactly() -> None:
    pages = sorted(PAGES.glob("*.html"))
    assert pages
    for page in pages:
        markup = page.read_bytes().decode("utf-8", "replace")
        assert scan(markup) == reference_counts(markup), page.name
