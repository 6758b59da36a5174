"""The sources file and the news.sources record format (agents/ingest/sources.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.ingest.sources import Source, SourcesError, load_sources, parse_sources, source_from_json
from streams.errors import BadRecord

EXAMPLE = """\
# the desk's feeds
https://example.com/feed.xml interval=300 source="Example News"
https://example.com/news-sitemap.xml kind=sitemap max_age=48   # trailing comment

https://example.org/atom.xml#top pages=always language=pt-BR name='Exemplo'
   https://example.net/feed.json
"""


def test_the_example_file() -> None:
    sources = parse_sources(EXAMPLE.splitlines())
    assert sources == [
        Source("https://example.com/feed.xml", name="Example News", interval=300.0),
        Source("https://example.com/news-sitemap.xml", kind="sitemap", max_age=48.0),
        Source("https://example.org/atom.xml#top", name="Exemplo", pages="always",
               language="pt"),
        Source("https://example.net/feed.json"),
    ]


@pytest.mark.parametrize(("line", "message"), [
    ("ftp://example.com/feed", "not an http(s) URL"),
    ("https:///nohost", "not an http(s) URL"),
    ("https://example.com:99999/feed", "malformed URL"),
    ("https://example.com/f colour=red", "unknown option 'colour'"),
    ("https://example.com/f interval=soon", "not a number"),
    ("https://example.com/f interval=5", "out of range"),
    ("https://example.com/f kind=podcast", "kind='podcast'"),
    ("https://example.com/f pages=sometimes", "pages='sometimes'"),
    ("https://example.com/f language=english", "ISO 639-1"),
    ("https://example.com/f interval=300 interval=600", "given twice"),
    ("https://example.com/f source=\"unclosed", "No closing quotation"),
    ("https://example.com/f justaword", "expected name=value"),
    ("https://example.com/f source=" + "x" * 300, "over 256"),
])
def test_bad_lines_are_refused_with_their_line_number(line: str, message: str) -> None:
    with pytest.raises(SourcesError) as caught:
        parse_sources(["# header", line], min_interval=60)
    assert "sources:2:" in str(caught.value) and message in str(caught.value)


def test_a_url_listed_twice_is_refused() -> None:
    with pytest.raises(SourcesError, match="listed twice"):
        parse_sources(["https://a.example/f", "https://a.example/f interval=600"])


def test_load_sources_reads_a_file_with_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "sources.txt"
    path.write_bytes(b"\xef\xbb\xbf" + EXAMPLE.encode())
    assert len(load_sources(path)) == 4
    with pytest.raises(SourcesError, match="cannot read"):
        load_sources(tmp_path / "missing.txt")


def test_records_round_trip_and_foreign_records_are_checked() -> None:
    for source in parse_sources(EXAMPLE.splitlines()):
        assert source_from_json(source.to_json()) == source
    for bad in (b"not json", b"[]", b'{"url": 5}', b'{"url": "https://a.example/", "x": 1}',
                b'{"url": "javascript:alert(1)"}', b'{"url": "https://a.example/", "kind": "x"}'):
        with pytest.raises(BadRecord):
            source_from_json(bad)
