"""Feeds and sitemaps to items (agents/ingest/feeds.py), on the real documents in
../shared/data/feeds (read in place)."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import orjson
import pytest

from agents.clean.core import canonical_url, clean
from agents.ingest.feeds import DocumentError, item_id, parse_date_text, parse_document
from streams.records import stable_id
from tests.conftest import DATA

FEEDS = DATA / "feeds"
URL = "https://feeds.example.com/section/feed.xml"
NOW = time.time()

# file: (kind, items, distinct ids, items with a date). From SOURCES.md's counts, less what
# cannot be read: entries with nothing in them (illegally-nested: 10 empty <item/>;
# no_encoding: one empty item; incomplete_cdata: its one item is cut before its title),
# dates not in a standard form (uolNoticias: Portuguese day and month names), duplicate
# guids and links (feed-io: 3 items, one id).
EXPECTED: dict[str, tuple[str, int, int, int]] = {
    "rss/FeedReader_Rss10OrfAt.xml": ("rss10", 50, 50, 50),
    "rss/FeedReader_Rss20CityDog.xml": ("rss20", 10, 10, 10),
    "rss/FeedReader_Rss20MoscowTimes.xml": ("rss20", 50, 50, 50),
    "rss/FeedReader_Rss20NYTimes.xml": ("rss20", 33, 33, 33),
    "rss/FeedReader_Rss20Reuters.xml": ("rss20", 10, 10, 10),
    "rss/RSParser_aktuality.rss": ("rss20", 30, 30, 30),
    "rss/RSParser_livemint.xml": ("rss20", 25, 25, 25),
    "rss/RSParser_macworld.rss": ("rss20", 30, 30, 30),
    "rss/RSS-Parser_feed-char-escape.xml": ("rss20", 1, 1, 1),
    "rss/RSS-Parser_feed-dcdate.xml": ("rss20", 1, 1, 1),
    "rss/RSS-Parser_feed-test-greek.xml": ("rss20", 1, 1, 1),
    "rss/RSS-Parser_feed-test-hindi-channel-image.xml": ("rss20", 1, 1, 1),
    "rss/RSS-Parser_feed-test-ru.xml": ("rss20", 1, 1, 1),
    "rss/feed-rs_rss_1.0_iso8859.xml": ("rss10", 1, 1, 1),
    "rss/feed-rs_rss_2.0_bbc.xml": ("rss20", 1, 1, 1),
    "rss/feed-rs_rss_2.0_ilgiornale.xml": ("rss20", 1, 1, 1),
    "rss/feed-rs_rss_2.0_nbcny.xml": ("rss20", 1, 1, 1),
    "rss/feed-rs_rss_2.0_wirecutter.xml": ("rss20", 1, 1, 1),
    "rss/feedjira_HuffPostCanada.xml": ("rss20", 2, 2, 2),
    "rss/miniflux_encoding_ISO-8859-1.xml": ("rss20", 40, 40, 40),
    "rss/miniflux_rdf_UTF8.xml": ("rss090", 60, 60, 0),
    "rss/miniflux_urdu_UTF8.xml": ("rss20", 26, 26, 26),
    "rss/node-feedparser_iconv.xml": ("rss20", 10, 10, 10),
    "rss/node-feedparser_wapowellness.xml": ("rss20", 29, 29, 29),
    "rss/rss-parser_encoding.rss": ("rss20", 40, 40, 40),
    "rss/rss-parser_guardian.rss": ("rss20", 55, 55, 55),
    "atom/RSS-Parser_atom-feed-rss-bridge.xml": ("atom10", 1, 1, 1),
    "atom/RSS-Parser_atom-link-alternate-href.xml": ("atom10", 1, 1, 1),
    "atom/RSS-Parser_feed-atom-test.xml": ("atom10", 1, 1, 1),
    "atom/feedjira_google_alerts_atom.xml": ("atom10", 20, 20, 20),
    "atom/node-feedparser_tpm.atom": ("atom10", 20, 20, 20),
    "atom/rss-parser_heise.atom": ("atom10", 15, 15, 15),
    "edge/FeedReader_Rss20JapanTimes.xml": ("rss20", 118, 118, 0),
    "edge/FeedReader_Rss20LeMonde.xml": ("rss20", 18, 18, 18),
    "edge/FeedReader_Rss20TheMirror.xml": ("rss20", 25, 25, 25),
    "edge/RSParser_kc0011.rss": ("rss20", 20, 20, 20),
    "edge/feed-io_sample-rss-nodate.xml": ("rss20", 3, 1, 3),
    "edge/feed-rs_rss_2.0_ilmessaggero.xml": ("rss20", 1, 1, 1),
    "edge/feedjira_InvalidDateFormat.xml": ("rss20", 2, 2, 2),
    "edge/feedjira_TechCrunch.xml": ("rss20", 20, 20, 20),
    "edge/feedparser_demoronize-1.xml": ("rss20", 1, 1, 0),
    "edge/feedparser_rss_incomplete_cdata.xml": ("rss20", 0, 0, 0),
    "edge/feedparser_rss_item_link_corrupted_ampersands.xml": ("rss20", 1, 1, 0),
    "edge/gofeed_rss_feed_bom.xml": ("rss20", 0, 0, 0),
    "edge/miniflux_no_encoding_ISO-8859-1.xml": ("rss20", 9, 9, 9),
    "edge/miniflux_windows-1252-incorrect-prolog.xml": ("rss20", 0, 0, 0),
    "edge/miniflux_windows-1252.xml": ("rss20", 0, 0, 0),
    "edge/node-feedparser_guid-dupes.xml": ("rss20", 1, 1, 1),
    "edge/node-feedparser_illegally-nested.xml": ("rss20", 10, 10, 10),
    "edge/node-feedparser_invalid-characters-gzipped.xml": ("rss20", 25, 25, 25),
    "edge/node-feedparser_rss-with-relative-urls.xml": ("rss20", 2, 2, 2),
    "edge/rss-parser_giantbomb-podcast.rss": ("rss20", 730, 730, 730),
    "edge/rss-parser_uolNoticias.rss": ("rss", 15, 15, 0),
    "jsonfeed/RSParser_3960.json": ("jsonfeed", 20, 20, 20),
    "jsonfeed/RSParser_jsonfeed-extension.json": ("jsonfeed", 3, 3, 3),
    "jsonfeed/feed-rs_jsonfeed_elastic_1.1.json": ("jsonfeed", 3, 3, 2),
    "jsonfeed/gofeed_version_json_11.json": ("jsonfeed", 1, 1, 1),
    "jsonfeed/trafilatura_feed.json": ("jsonfeed", 25, 25, 25),
    "sitemaps/advertools_news_sitemap.xml": ("news-sitemap", 6, 6, 6),
    "sitemaps/crawler-commons_hebdenbridgetimes-articles-sitemap.xml": ("urlset", 74, 74, 0),
    "sitemaps/crawler-commons_shinpaideshou-news-sitemap.xml": ("news-sitemap", 3, 3, 3),
    "sitemaps/crawler-commons_sitemap-news.xml": ("news-sitemap", 2, 2, 2),
}
# file: (reason); documents that give no items, each for its reason.
REFUSED = {
    "edge/feed-rs_rss_2.0_invalid_1.xml": "malformed",  # truncated after the channel header
    "edge/feedparser_bozo_invalid-bytes-with-bom.xml": "malformed",
    "edge/miniflux_iso88591_utf8_mismatch.xml": "not_a_feed",  # a <note>, not a feed
    "edge/rss-parser_unrecognized.rss": "not_a_feed",  # an HTML "Document Moved" page
    "jsonfeed/RSParser_ScriptingNews.json": "not_a_feed",  # RSS-in-JSON, not JSON Feed
    "jsonfeed/gofeed_invalid.json": "malformed",
}
INDEXES = {
    "sitemaps/advertools_sitemap_index.xml": 4,
    "sitemaps/crawler-commons_sitemap.index.xml": 15,  # bare URLs, no <loc>
    "sitemaps/trafilatura_sitemap2.xml": 2,  # one <loc> in CDATA
}


def _parse(name: str, url: str = URL):  # type: ignore[no-untyped-def]
    return parse_document((FEEDS / name).read_bytes(), url, None, now=NOW)


def test_every_document_of_the_corpus_is_covered() -> None:
    files = {str(p.relative_to(FEEDS)) for p in FEEDS.rglob("*")
             if p.is_file() and p.parent.name in ("rss", "atom", "edge", "jsonfeed", "sitemaps")}
    assert files == set(EXPECTED) | set(REFUSED) | set(INDEXES)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_items_ids_and_dates(name: str) -> None:
    kind, count, distinct, dated = EXPECTED[name]
    doc = _parse(name)
    assert (doc.kind, len(doc.items), len({i.id for i in doc.items}),
            sum(1 for i in doc.items if i.published_at)) == (kind, count, distinct, dated)
    for item in doc.items:
        assert item.link is None or item.link.startswith(("http://", "https://"))
        assert item.published_at is None or item.published_at[:4] >= "1990"
        assert item.title is None or ("<" not in item.title and "\n" not in item.title)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_broken_documents_are_refused_with_their_reason(name: str) -> None:
    with pytest.raises(DocumentError) as caught:
        _parse(name)
    assert caught.value.reason == REFUSED[name]


@pytest.mark.parametrize("name", sorted(INDEXES))
def test_sitemap_indexes_list_their_sitemaps(name: str) -> None:
    doc = _parse(name)
    assert doc.kind == "sitemapindex" and not doc.items
    assert len(doc.sitemaps) == INDEXES[name]
    assert all(ref.url.startswith("http") and "<" not in ref.url for ref in doc.sitemaps)


def test_sitemap_index_dates_and_cdata() -> None:
    refs = _parse("sitemaps/trafilatura_sitemap2.xml").sitemaps
    assert [(r.url, r.lastmod) for r in refs] == [
        ("http://www.example.com/sitemap1.xml.gz", "2004-10-01T18:23:17Z"),
        ("http://www.example.com/sitemap2.xml.gz", "2005-01-01")]
    bare = _parse("sitemaps/crawler-commons_sitemap.index.xml").sitemaps[0]
    assert bare.url == "https://example.com/sitemap.jss?portalCode=10260&lang=en"


def test_news_sitemap_fields() -> None:
    doc = _parse("sitemaps/advertools_news_sitemap.xml")
    first = doc.items[0]
    assert first.link == "https://www.nytimes.com/interactive/2020/05/11/magazine/quarantine-insanity.html"
    assert first.title == ("Quarantine Was Driving Me Crazy — So I Decided to Lose My Mind on "
                           "Purpose")
    assert first.publication == "The New York Times" and first.language == "en"
    assert first.published_at == "2020-05-11T09:00:01Z"
    assert first.modified_at == "2020-05-19T21:57:45Z"
    empty_name = _parse("sitemaps/crawler-commons_sitemap-news.xml").items[1]
    assert empty_name.publication is None and empty_name.published_at == "2025-05-27"


def test_plain_urlset_keeps_lastmod_apart_from_the_publication_date() -> None:
    item = _parse("sitemaps/crawler-commons_hebdenbridgetimes-articles-sitemap.xml").items[0]
    assert item.published_at is None  # lastmod is when the page changed, not its date
    assert item.modified_at == "2015-05-03T17:51:50Z"
    assert item.newest_date() == "2015-05-03T17:51:50Z"


def test_relative_links_resolve_against_the_feed_url() -> None:
    doc = _parse("edge/node-feedparser_rss-with-relative-urls.xml",
                 "https://www.arcgames.com/en/rss")
    assert doc.items[0].link == (
        "https://www.arcgames.com/en/games/neverwinter/news/detail/"
        "10743874-neverwinter-%26-jingle-jam-humble-bundle%21")
    atom = _parse("atom/node-feedparser_tpm.atom", "https://talkingpointsmemo.com/feed/all")
    assert atom.items[0].link == ("https://talkingpointsmemo.com/livewire/"
                                  "hannity-announces-fox-hired-sebastian-gorka-national-security-"
                                  "strategist")


def test_dates_are_read_not_guessed() -> None:
    # "2020/1/10 14:33:00": feedparser's own parser makes it 1 December 2020.
    assert _parse("edge/RSParser_kc0011.rss").items[0].published_at == "2020-01-10T14:33:00"
    # A Unix epoch in dc:date is ignored; the item's pubDate is read.
    invalid = _parse("edge/feedjira_InvalidDateFormat.xml").items
    assert invalid[0].published_at == "2017-10-16T15:10:00Z"
    # Two-digit years and US zones (RFC 822).
    assert _parse("edge/node-feedparser_rss-with-relative-urls.xml").items[0].published_at == \
        "2017-12-07T18:00:29Z"
    assert parse_date_text("Wed, 17 Jan 2018 15:50:00 EST") == "2018-01-17T20:50:00Z"
    for bad in ("1518478934", "Seg, 24 Set 2018 19:42:40 -0300", "soon", "", None, 42,
                "1890-01-01", "2999-01-01T00:00:00Z"):
        assert parse_date_text(bad, NOW) is None, bad


def test_encodings_are_repaired() -> None:
    greek = _parse("rss/RSS-Parser_feed-test-greek.xml").items[0]
    assert greek.title and any("\u0370" <= c <= "\u03ff" for c in greek.title)
    cyrillic = _parse("rss/node-feedparser_iconv.xml").items[0]
    assert cyrillic.title and any("\u0400" <= c <= "\u04ff" for c in cyrillic.title)
    latin = _parse("edge/rss-parser_uolNoticias.rss").items[0]  # no declaration, ISO-8859-1
    assert latin.title and "simulações" in latin.title


def test_ids_use_the_canonical_link_as_clean_does() -> None:
    item = _parse("rss/feed-rs_rss_2.0_wirecutter.xml").items[0]
    assert item.link and "utm_source=rss" in item.link
    assert item.id == stable_id("url", canonical_url(item.link) or "")
    # The clean stage gives an article published with this URL the same id.
    article = clean(orjson.dumps({"url": item.link, "title": "t", "text": "Some body text."}))
    assert article.id == item.id
    # Same link with other tracking parameters: same id; guid-only items are per feed.
    assert item_id(item.link.split("?")[0] + "?utm_medium=email", None, URL, None, None) == item.id
    assert item_id(None, "42", "https://a.example/feed", None, None) != \
        item_id(None, "42", "https://b.example/feed", None, None)
    assert item_id(None, None, URL, None, None) is None


def test_json_feed_fields() -> None:
    doc = _parse("jsonfeed/trafilatura_feed.json")
    first = doc.items[0]
    assert first.link and first.link.startswith("https://www.npr.org/")
    assert first.content and first.content_html and first.published_at
    extension = _parse("jsonfeed/RSParser_jsonfeed-extension.json").items
    assert [i.guid for i in extension] and all(i.link is None for i in extension)
    assert extension[0].published_at == "2021-03-05T11:04:04Z"
    assert _parse("jsonfeed/RSParser_3960.json").language == "de"


def test_gzip_bodies_html_pages_and_entity_bombs() -> None:
    feed = (FEEDS / "rss/FeedReader_Rss20Reuters.xml").read_bytes()
    assert len(parse_document(gzip.compress(feed), URL).items) == 10
    with pytest.raises(DocumentError) as caught:
        parse_document(gzip.compress(b"<rss>" + b" " * 5000), URL, max_bytes=1000)
    assert caught.value.reason == "too_large"
    page = (FEEDS / "pages/newspaper4k_cnn_article.html").read_bytes()
    with pytest.raises(DocumentError) as caught:
        parse_document(page, URL)
    assert caught.value.reason == "not_a_feed"
    bomb = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><rss><channel><item><title>&lol2;'
            b"</title></item></channel></rss>")
    with pytest.raises(DocumentError) as caught:
        parse_document(bomb, URL)
    assert caught.value.reason == "malformed"
    for empty in (b"", b"   ", b"plain words"):
        with pytest.raises(DocumentError):
            parse_document(empty, URL)


def test_a_broken_sitemap_is_read_for_its_locs() -> None:
    text = (FEEDS / "sitemaps/advertools_news_sitemap.xml").read_bytes()
    cut = text[: len(text) // 2]
    doc = parse_document(cut, URL)
    assert doc.lenient and doc.kind == "urlset" and 1 <= len(doc.items) < 6


def test_parse_speed_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    """Items per second over the whole corpus (printed; a floor that only a broken parser
    misses on the shared 2-core machine)."""
    documents = [(p, p.read_bytes()) for p in sorted(FEEDS.rglob("*"))
                 if str(p.relative_to(FEEDS)) in EXPECTED]
    started = time.perf_counter()
    items = sum(len(parse_document(body, URL, None).items) for _, body in documents)
    seconds = time.perf_counter() - started
    with capsys.disabled():
        print(f"\ningest parse: {items} items in {seconds:.2f} s = {items / seconds:.0f} items/s")
    assert items / seconds > 100


def test_corpus_is_read_in_place() -> None:
    repo = Path(__file__).resolve().parents[2]
    assert repo.parent / "shared" / "data" / "feeds" == FEEDS
