"""Unit tests of the clean stage's pure core (agents/clean/core.py)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import orjson
import pytest

import agents.clean.core as clean_module
from agents.clean.core import (
    BOILERPLATE_RULES,
    canonical_url,
    clean,
    fix_unicode,
    parse_date,
    strip_boilerplate,
)
from streams.errors import (
    BadEncoding,
    BinaryPayload,
    EmptyBody,
    MalformedJSON,
    NotAnObject,
    RejectedInput,
    TooLarge,
    WrongFieldType,
)
from streams.records import Article, stable_id

SEEDS = Path(__file__).resolve().parents[3] / "shared" / "seeds"
SEED_000 = SEEDS / "000_46bcd2f114cab8ad.txt"
SEED_003 = SEEDS / "003_fa62bcc0bea388f4.txt"

# Seed 000's promo/footer lines, by how they start (the brief lists them).
BENZINGA_BOILERPLATE = (
    "See Also:",
    "Read Next:",
    "Photo via Shutterstock",
    "This story was generated using Benzinga Neuro",
    "Market News and Data brought to you by",
    "Posted In:",
    "Benzinga simplifies the market",
    "Trade confidently with insights",
    "Join Now",
)

BODY = (
    "The central bank raised interest rates by a quarter point on Tuesday, citing "
    "persistent inflation in services and a tight labour market.\n\n"
    "Economists had widely expected the move, which takes the benchmark rate to its "
    "highest level in more than fifteen years."
)


def payload(**fields: object) -> bytes:
    return orjson.dumps(fields)


def paragraphs(article: Article) -> list[str]:
    return article.text.split("\n\n")


def seed_lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


# --------------------------------------------------------------------------- seeds


def test_seed_000_title_and_body_paragraphs_kept() -> None:
    lines = seed_lines(SEED_000)
    article = clean(SEED_000.read_bytes())
    assert article.title == lines[0]
    real = [line for line in lines[1:] if not line.startswith(BENZINGA_BOILERPLATE)]
    assert paragraphs(article) == real
    assert len(real) >= 10


def test_seed_000_every_footer_line_removed() -> None:
    article = clean(SEED_000.read_bytes())
    for marker in BENZINGA_BOILERPLATE:
        assert marker not in article.text, marker
    assert "Benzinga" not in article.text
    assert "Shutterstock" not in article.text


def test_seed_000_keeps_what_happened_and_why_it_matters() -> None:
    text = clean(SEED_000.read_bytes()).text
    assert any(p.startswith("What Happened: ") for p in text.split("\n\n"))
    assert any(p.startswith("Why It Matters: ") for p in text.split("\n\n"))
    assert "“positive, practical, and constructive.”" in text


def test_seed_003_date_title_and_every_paragraph() -> None:
    lines = seed_lines(SEED_003)
    article = clean(SEED_003.read_bytes())
    assert article.published_at == "2024-05-31"
    assert lines[0].startswith("date 2024-05-31 ")
    assert article.title == lines[0].removeprefix("date 2024-05-31 ")
    assert paragraphs(article) == lines[1:]


def test_seeds_are_english_with_deterministic_content_ids() -> None:
    for seed in (SEED_000, SEED_003):
        first, second = clean(seed.read_bytes()), clean(seed.read_bytes())
        assert first.language == "en"
        assert first.id == second.id
        assert first.id == stable_id("content", "", first.title, first.text)


# --------------------------------------------------------------------------- JSON


def test_json_all_fields() -> None:
    article = clean(
        payload(
            id="abc-1",
            url="https://Example.COM/news/rates?utm_source=x&page=2#top",
            source=" Example News ",
            title="  Central bank   raises rates ",
            text=BODY,
            published_at="2024-05-31T10:00:00+02:00",
            language="en-GB",
        ),
        received_at=1717150000.5,
    )
    assert article.id == "abc-1"
    assert article.url == "https://example.com/news/rates?page=2"
    assert article.source == "Example News"
    assert article.title == "Central bank raises rates"
    assert article.published_at == "2024-05-31T08:00:00Z"
    assert article.language == "en"
    assert article.received_at == 1717150000.5
    assert article.stage_times == {}
    assert len(paragraphs(article)) == 2


def test_json_null_and_missing_fields_are_fine() -> None:
    article = clean(payload(id=None, url=None, source=None, title=None, text=BODY, html=None))
    assert article.url is None and article.source is None and article.published_at is None
    assert article.title.startswith("The central bank raised interest rates")
    assert article.title.endswith("labour market.")


def test_json_integer_id_becomes_string() -> None:
    assert clean(payload(id=42, title="t", text=BODY)).id == "42"


def test_json_text_preferred_over_html() -> None:
    article = clean(payload(text=BODY, html="<p>Other words entirely, from the html.</p>"))
    assert "Other words" not in article.text


def test_json_html_field_is_converted() -> None:
    article = clean(payload(title="From JSON", html=HTML_PAGE))
    assert article.title == "From JSON"  # an explicit field wins over the page's metadata
    assert article.source == "The Daily Example"
    assert "Officials confirmed the bridge" in article.text


def test_json_published_at_epoch_seconds_and_millis() -> None:
    seconds = clean(payload(text=BODY, published_at=1717113600)).published_at
    assert seconds == "2024-05-31T00:00:00Z"
    millis = clean(payload(text=BODY, published_at=1717113600000)).published_at
    assert millis == "2024-05-31T00:00:00Z"


def test_json_unreadable_date_is_dropped_not_rejected() -> None:
    assert clean(payload(text=BODY, published_at="sometime last week")).published_at is None


def test_json_source_falls_back_to_url_host() -> None:
    article = clean(payload(url="https://www.reuters.com/world/x", text=BODY))
    assert article.source == "reuters.com"


def test_title_is_cut_to_500_chars() -> None:
    article = clean(payload(title="word " * 300, text=BODY))
    assert len(article.title) <= 500
    assert article.title.endswith("word")


def test_fallback_title_is_cut_to_about_200_chars() -> None:
    article = clean(payload(text="lorem ipsum " * 100))
    assert 100 < len(article.title) <= 200


def test_body_cut_to_max_body_chars() -> None:
    article = clean(payload(text="A sentence about markets. " * 1000), max_body_chars=500)
    assert len(article.text) <= 500


def test_whitespace_collapsed_inside_lines() -> None:
    article = clean(payload(title="t", text="One \t  two\u00a0\u00a0three.\r\n\r\n\r\nFour   five."))
    assert article.text == "One two three.\n\nFour five."


def test_headline_repeated_as_first_line_is_dropped_unless_alone() -> None:
    article = clean(payload(title="Markets rally", text="Markets rally\nStocks rose on Monday."))
    assert article.text == "Stocks rose on Monday."
    alone = clean(payload(title="Stocks rose on Monday.", text="Stocks rose on Monday."))
    assert alone.text == "Stocks rose on Monday."


def test_json_text_holding_markup_is_treated_as_html() -> None:
    article = clean(payload(title="t", text="<p>First para.</p><p>Second <b>bold</b> para.</p>"))
    assert article.text == "First para.\n\nSecond bold para."


def test_json_entities_unescaped_only_when_well_formed() -> None:
    article = clean(payload(title="AT&amp;T profits rise", text="It&#39;s up &pound;5m at R&D&copy"))
    assert article.title == "AT&T profits rise"
    assert article.text == "It's up £5m at R&D&copy"


# --------------------------------------------------------------------------- plain text


def test_plain_text_title_and_body() -> None:
    article = clean(b"\n\n  Markets rally  \nStocks rose sharply on Monday.\nBonds fell.\n")
    assert article.title == "Markets rally"
    assert article.text == "Stocks rose sharply on Monday.\n\nBonds fell."
    assert article.published_at is None


def test_plain_text_date_on_its_own_line() -> None:
    article = clean(b"date 2024-05-31\nMarkets rally\nStocks rose sharply on Monday.")
    assert article.published_at == "2024-05-31"
    assert article.title == "Markets rally"


def test_plain_text_datetime_prefix() -> None:
    article = clean(b"Date: 2024-05-31T10:15:00Z Markets rally\nStocks rose on Monday.")
    assert article.published_at == "2024-05-31T10:15:00Z"
    assert article.title == "Markets rally"


def test_bracket_text_that_is_not_json_is_plain_text() -> None:
    article = clean(b"[Reuters] Oil jumps\nOil prices rose 3% on supply worries.")
    assert article.title == "[Reuters] Oil jumps"


def test_utf8_bom_is_stripped() -> None:
    article = clean(b"\xef\xbb\xbf" + payload(title="t", text=BODY))
    assert article.title == "t"


# --------------------------------------------------------------------------- rejections

REJECTIONS = [
    (b"caf\xe9 au lait, still latin-1", BadEncoding, "bad_encoding", "UTF-8"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", BinaryPayload, "binary", "NUL"),
    (b"ab\x01\x02\x03\x04cd\x05\x06", BinaryPayload, "binary", "control characters"),
    (b'{"title": "cut off', MalformedJSON, "malformed_json", "not valid JSON"),
    (b"[1, 2, 3]", NotAnObject, "not_an_object", "array"),
    (b"42", NotAnObject, "not_an_object", "number"),
    (b'"just a string"', NotAnObject, "not_an_object", "string"),
    (b"true", NotAnObject, "not_an_object", "boolean"),
    (b"null", NotAnObject, "not_an_object", "null"),
    (b'{"title": 42, "text": "x"}', WrongFieldType, "wrong_field_type", "'title'"),
    (b'{"text": ["x"]}', WrongFieldType, "wrong_field_type", "'text'"),
    (b'{"text": "x", "published_at": {}}', WrongFieldType, "wrong_field_type", "'published_at'"),
    (b'{"text": "x", "id": [1]}', WrongFieldType, "wrong_field_type", "'id'"),
    (b'{"text": "x", "url": true}', WrongFieldType, "wrong_field_type", "boolean"),
    (b'{"title": "only a title"}', EmptyBody, "empty_body", "no body text"),
    (b'{"title": "t", "text": "  \\n\\n "}', EmptyBody, "empty_body", "no body text"),
    (b"Only a title line\n\n", EmptyBody, "empty_body", "only a title line"),
    (b"<html><body><nav>Home | World</nav><footer>(c)</footer></body></html>", EmptyBody,
     "empty_body", "no body text"),
    (b"Title\nSee Also: Another story\nPhoto via Shutterstock\n", EmptyBody, "empty_body",
     "boilerplate"),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "error", "reason", "says"), REJECTIONS)
def test_rejections(raw: bytes, error: type[RejectedInput], reason: str, says: str) -> None:
    with pytest.raises(error) as info:
        clean(raw)
    assert info.value.reason == reason
    assert says.lower() in info.value.message.lower()


def test_wrong_field_type_message_names_field_and_type() -> None:
    with pytest.raises(WrongFieldType) as info:
        clean(b'{"title": 42, "text": "x"}')
    assert info.value.message == "field 'title' must be a string or null, got number 42"


def test_size_limit_is_checked_first() -> None:
    raw = b"\x00" * 101  # binary too, but the size check comes first
    with pytest.raises(TooLarge) as info:
        clean(raw, max_bytes=100)
    assert info.value.reason == "too_large"
    assert "101 bytes" in info.value.message and "100-byte limit" in info.value.message


def test_size_limit_boundary() -> None:
    raw = payload(title="t", text=BODY)
    assert clean(raw, max_bytes=len(raw)).title == "t"
    with pytest.raises(TooLarge):
        clean(raw, max_bytes=len(raw) - 1)


def test_nothing_but_rejections_escape_random_input() -> None:
    rng = random.Random(1234)
    templates = [
        payload(title="t", text=BODY),
        HTML_PAGE.encode(),
        SEED_003.read_bytes(),
        b'{"a": [1, {"b": null}], "text": "\\u00e9"}',
    ]
    for _ in range(400):
        base = bytearray(rng.choice(templates))
        for _ in range(rng.randint(1, 8)):
            pos = rng.randrange(len(base))
            base[pos] = rng.randrange(256)
        cut = bytes(base[: rng.randint(0, len(base))])
        for raw in (bytes(base), cut, bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))):
            try:
                article = clean(raw)
            except RejectedInput:
                continue
            assert article.id and article.text


def test_nothing_but_rejections_escape_random_field_types() -> None:
    rng = random.Random(99)
    values: list[object] = [
        None, 0, -1, 1.5, 1e300, 10**30, True, "", "  ", "x", [], {}, [1], {"a": 1},
        "Some body text for an article.", "<p>Para.</p>", "https://x.com/a?utm_a=1",
        "2024-05-31", "en-US", "\u00e2\u20ac\u0153",
    ]  # fmt: skip
    names = ["id", "url", "source", "title", "text", "html", "published_at", "language"]
    for _ in range(1000):
        fields = {name: rng.choice(values) for name in rng.sample(names, rng.randint(0, 8))}
        try:
            article = clean(json.dumps(fields).encode())
        except RejectedInput:
            continue
        assert article.text


# --------------------------------------------------------------------------- HTML

HTML_PAGE = """<!doctype html>
<html lang="en-US">
<head>
  <title>Bridge reopens after repairs | The Daily Example</title>
  <meta property="og:title" content="Bridge reopens after two years of repairs">
  <meta property="og:site_name" content="The Daily Example">
  <meta property="article:published_time" content="2024-05-31T09:30:00Z">
  <link rel="canonical" href="https://WWW.Example.com/local/bridge?utm_medium=social#comments">
  <style>p { color: red }</style>
  <script>var tracking = "Officials said nothing";</script>
</head>
<body>
  <header><a href="/">The Daily Example</a><nav>Home | Local | Sport</nav></header>
  <div class="cookie-banner">We use cookies to improve your experience.</div>
  <main>
    <article class="story thread-view">
      <h1>Bridge reopens after two years of repairs</h1>
      <p class="byline">By Jane Doe | The Daily Example</p>
      <p>Officials confirmed the bridge
         would reopen to traffic on <b>Friday</b>, two years after it closed.</p>
      <div class="ad-slot">Advertisement: buy things</div>
      <div class="share-buttons">Share on Facebook</div>
      <p>The repairs cost &pound;12m, according to the <a href="/council">council</a>.</p>
      <aside class="related-stories"><p>Related: Road closures this weekend</p></aside>
      <div class="commentary-box"><p>Residents welcomed the news after the long wait.</p></div>
      <figure><img src="x.jpg"><figcaption>Photo: the bridge in 2022</figcaption></figure>
      <ul><li>First point in a list.</li><li>Second point.</li></ul>
      <p>Sign up for our newsletter</p>
      <div id="comments">Great article!!!</div>
    </article>
    <article class="teaser"><p>Another story.</p></article>
  </main>
  <footer>Copyright 2024 The Daily Example. All rights reserved.</footer>
</body>
</html>
"""


def test_html_page_metadata() -> None:
    article = clean(HTML_PAGE.encode())
    assert article.title == "Bridge reopens after two years of repairs"
    assert article.published_at == "2024-05-31T09:30:00Z"
    assert article.source == "The Daily Example"
    assert article.url == "https://www.example.com/local/bridge"
    assert article.language == "en"  # from <html lang>
    assert article.id == stable_id("url", "https://www.example.com/local/bridge")


def test_html_page_body() -> None:
    assert paragraphs(clean(HTML_PAGE.encode())) == [
        "Officials confirmed the bridge would reopen to traffic on Friday, two years after it "
        "closed.",
        "The repairs cost £12m, according to the council.",
        "Residents welcomed the news after the long wait.",
        "First point in a list.",
        "Second point.",
    ]


def test_html_title_fallbacks() -> None:
    page = "<html><head><title>Storm hits coast - Coast News</title>"
    page += '<meta property="og:site_name" content="Coast News"></head>'
    page += "<body><p>Winds of 100 km/h battered the coast overnight.</p></body></html>"
    assert clean(page.encode()).title == "Storm hits coast"
    fragment = b"<div><h1>Storm hits coast</h1><p>Winds battered the coast overnight.</p></div>"
    article = clean(fragment)
    assert article.title == "Storm hits coast"
    assert article.text == "Winds battered the coast overnight."


def test_html_date_from_time_element_and_meta_name() -> None:
    timed = b'<article><time datetime="2024-05-31">May 31</time><p>Body text here.</p></article>'
    assert clean(timed).published_at == "2024-05-31"
    meta = b'<head><meta name="date" content="Fri, 31 May 2024 10:00:00 GMT"></head><p>Body.</p>'
    assert clean(meta).published_at == "2024-05-31T10:00:00Z"


PROSE = [
    "The storm reached the coast shortly after midnight, bringing winds of more than 100 km/h.",
    "Emergency crews worked through the night to clear roads and restore power to the area.",
    "By morning, officials said, most of the region was reconnected and schools would open.",
]


def _menu(words: list[str]) -> str:
    return "<ul>" + "".join(f'<li><a href="/{w}">{w}</a></li>' for w in words) + "</ul>"


def test_html_prose_is_read_from_its_paragraphs_not_what_sits_beside_them() -> None:
    # The shape of real pages without <article>: a menu, the story's paragraphs with a photo
    # gallery and a story-highlights list of links among them, a rating widget, a teaser
    # column and a footer of links (issue 19; bench/extract_bench.py measures it on pages).
    page = (
        "<html><body><div id=top>" + _menu(["Sports", "MLB", "NBA", "NHL", "Politics"])
        + "</div><div class=main><div class=story><h1>Storm hits coast</h1>"
        + _menu(["Fate of the parade balloons", "Airports reopen"])
        + f"<p>{PROSE[0]}</p>"
        + "<div class=gallery><div><cite>Crews clear a fallen tree in the town square on "
        + "Tuesday morning, before the second band of rain arrived.</cite></div>"
        + "<div><cite>A plane is de-iced before departure at the airport on Monday.</cite></div>"
        + "</div>"
        + f"<p>{PROSE[1]}</p><div class=rating>Rate it:<span>1 star</span><span>2 stars</span>"
        + f"</div><p>{PROSE[2]}</p></div>"
        + "<div class=side><div>Getting the latest warnings when storms are headed your way "
        + "and knowing what to do before, during and after.</div></div></div>"
        + "<div class=foot>" + _menu(["Home", "Video", "World", "Terms", "Privacy"])
        + "</div></body></html>"
    )
    assert paragraphs(clean(page.encode())) == PROSE


def test_html_prose_written_as_divs_is_read_from_its_divs() -> None:
    # Some sites write paragraphs as <div class="..."> and keep <p> for sidebar blurbs: the
    # <p>s alone are not the article, so every <div> like the prose ones is read, short too.
    sidebar = "<div class=box><p>The digital world of news, with interactive graphics and more.</p></div>"
    story = "".join(f'<div class="para">{line}</div>' for line in [*PROSE, "Short one."])
    page = f"<html><body><div class=col>{story}</div>{sidebar}</body></html>"
    assert paragraphs(clean(page.encode())) == [*PROSE, "Short one."]


def test_html_without_prose_paragraphs_is_read_block_by_block() -> None:
    page = b"<html><body><div>Line one of a notice.</div><div>Line two.</div></body></html>"
    assert paragraphs(clean(page)) == ["Line one of a notice.", "Line two."]


def test_html_scripts_and_styles_in_the_body_are_not_text() -> None:
    page = (f"<p>{PROSE[0]}</p><script>var note = 'script text';</script>"
            f"<style>p {{ color: red }}</style><p>{PROSE[1]}</p><noscript>Enable JS</noscript>")
    article = clean(f"<html><body><div>{page}</div></body></html>".encode())
    assert paragraphs(article) == PROSE[:2]


def test_html_broken_markup_still_gives_the_paragraphs() -> None:
    page = (f"<html><body><div class=a><p>{PROSE[0]}<p>{PROSE[1]}</span></div></b>"
            f"<p>{PROSE[2]}</td></body>")
    assert paragraphs(clean(page.encode())) == PROSE


def test_html_junk_classes_match_whole_words_only() -> None:
    page = (
        '<div class="thread header-main shadow-box loading"><p>Kept paragraph.</p></div>'
        '<div class="adBox ad"><p>Ad text.</p></div><div id="social_links"><p>Social.</p></div>'
        '<section class="sponsored-content"><p>Sponsor text.</p></section>'
    )
    assert clean(b"<h1>T</h1>" + page.encode()).text == "Kept paragraph."


def test_html_nested_too_deep_is_rejected_quickly() -> None:
    with pytest.raises(TooLarge) as info:
        clean(b"<div>" * 50_000 + b"<p>Body.</p>")
    assert "deep" in info.value.message
    # Deep but within the limit still parses.
    assert clean(b"<div>" * 900 + b"<p>Body text.</p>").text == "Body text."


def test_html_og_url_when_no_canonical() -> None:
    page = b'<head><meta property="og:url" content="https://x.org/a"></head><p>Body text.</p>'
    assert clean(page).url == "https://x.org/a"


# --------------------------------------------------------------------------- unicode


@pytest.mark.parametrize(
    ("broken", "fixed"),
    [
        ("â€œHelloâ€\x9d", "“Hello”"),
        ("CafÃ©", "Café"),
        ("Itâ€™s the Ã¼ber-merger", "It’s the über-merger"),
    ],
)
def test_mojibake_repaired(broken: str, fixed: str) -> None:
    assert fix_unicode(broken) == fixed
    article = clean(payload(title=broken, text=f"{broken} said the report, again and again."))
    assert article.title == fixed
    assert article.text.startswith(fixed)


def test_clean_unicode_untouched() -> None:
    text = "Zürich – “quoted” Café: 東京 and Москва."
    assert fix_unicode(text) == text


def test_nfc_zero_width_and_nbsp() -> None:
    article = clean(payload(title="Cafe\u0301\u200b news", text="Price\u00a0rise in\u2009Zu\u0308rich."))
    assert article.title == "Café news"
    assert article.text == "Price rise in Zürich."


# --------------------------------------------------------------------------- language

LANGUAGE_SAMPLES = {
    "en": "The government announced new measures on Tuesday to support farmers hit by drought.",
    "fr": "Le gouvernement a annoncé mardi une série de mesures pour soutenir les agriculteurs "
    "touchés par la sécheresse.",
    "de": "Die Bundesregierung hat am Dienstag neue Maßnahmen zur Unterstützung der Landwirte "
    "angekündigt, die von der Dürre betroffen sind.",
    "es": "El gobierno anunció el martes una serie de medidas para apoyar a los agricultores "
    "afectados por la sequía.",
}


@pytest.mark.parametrize(("code", "text"), LANGUAGE_SAMPLES.items())
def test_language_detected(code: str, text: str) -> None:
    assert clean(payload(title="", text=text)).language == code


def test_lingua_fallback_detector(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without pycld2 the stage falls back to lingua: same codes, just slower. (Four
    languages only: loading all thirty models takes ~8 s.)"""
    fallback = clean_module._lingua_detector(("ENGLISH", "FRENCH", "GERMAN", "SPANISH"))
    monkeypatch.setattr(clean_module, "_detector", fallback)
    for code, text in LANGUAGE_SAMPLES.items():
        assert clean_module.detect_language("", text) == code


def test_language_none_when_too_short() -> None:
    assert clean(payload(title="Hi", text="Ok.")).language is None


def test_language_field_wins_over_detection() -> None:
    article = clean(payload(text=LANGUAGE_SAMPLES["fr"], language="DE"))
    assert article.language == "de"


# --------------------------------------------------------------------------- ids


def test_id_prefers_payload_then_key_then_url_then_content() -> None:
    with_id = payload(id="p1", url="https://a.com/x", text=BODY)
    assert clean(with_id, key=b"k1").id == "p1"
    no_id = payload(url="https://a.com/x", text=BODY)
    assert clean(no_id, key=b"k1").id == "k1"
    assert clean(no_id).id == stable_id("url", "https://a.com/x")
    no_url = payload(source="S", title="T", text=BODY)
    article = clean(no_url)
    assert article.id == stable_id("content", "S", "T", article.text)


def test_id_same_for_url_variants() -> None:
    ids = {
        clean(payload(url=url, text=BODY)).id
        for url in (
            "https://example.com/a?b=1",
            "HTTPS://EXAMPLE.com/a?b=1#section",
            "https://example.com/a?utm_source=tw&b=1&utm_campaign=z",
            "  https://example.com/a?b=1&fbclid=XYZ ",
        )
    }
    assert len(ids) == 1


def test_content_id_changes_with_content() -> None:
    first = clean(payload(title="T", text=BODY)).id
    assert clean(payload(title="T", text=BODY)).id == first
    assert clean(payload(title="T", text=BODY + " More.")).id != first


def test_canonical_url_keeps_path_case_and_other_params() -> None:
    assert canonical_url("https://Ex.com/Path/A?id=5&utm_term=x") == "https://ex.com/Path/A?id=5"


# --------------------------------------------------------------------------- boilerplate


@pytest.mark.parametrize(
    "line",
    [
        "Also Read: Ten stocks to watch",
        "Related: Oil slides as demand fears grow",
        "Read more: the full report",
        "Click here to get the full story",
        "Sign up for our newsletter",
        "Get our free daily newsletter in your inbox",
        "Subscribe to our daily briefing",
        "Follow us on Twitter",
        "Follow Reuters on X for updates",
        "Copyright © 2024 Example Media",
        "© 2024 Example Media Ltd. All rights reserved.",
        "Image credit: Getty Images",
        "Photo credit: AP",
        "(Reporting by Jane Doe; Editing by John Roe)",
        "Advertisement",
    ],
)
def test_common_boilerplate_lines_removed(line: str) -> None:
    body = f"{BODY}\n{line}\nThe decision was unanimous, the bank said."
    article = clean(payload(title="t", text=body))
    assert line not in article.text
    assert "The decision was unanimous" in article.text or line.startswith(("Copyright", "©"))


@pytest.mark.parametrize("byline", ["By Jane Doe", "By Jane Doe | Reuters", "By JANE DOE, AP"])
def test_leading_byline_removed(byline: str) -> None:
    article = clean(payload(title="t", text=f"{byline}\n{BODY}"))
    assert article.text == clean(payload(title="t", text=BODY)).text


def test_prose_that_resembles_boilerplate_is_kept() -> None:
    lines = [
        "By Monday, prices had fallen by a third across the region.",
        "Subscribers to the service grew by 8% in the quarter.",
        "Copyright law is at the heart of the dispute, lawyers said.",
        "The newsletter business remains small, analysts say.",
        "The weekly newsletter reached two million readers last year, the firm said.",
        "Research by the university found a sharp rise in rents.",
    ]
    article = clean(payload(title="t", text="\n".join(lines)))
    assert paragraphs(article) == lines


def test_footer_marker_cuts_rest_only_in_second_half() -> None:
    early = ["Posted In: Markets", "Para one.", "Para two.", "Para three.", "Para four."]
    assert strip_boilerplate(early) == early[1:]
    late = ["Para one.", "Para two.", "Para three.", "Posted In: Markets", "Tail text here."]
    assert strip_boilerplate(late) == late[:3]


def test_rules_table_is_documented() -> None:
    assert len({rule.name for rule in BOILERPLATE_RULES}) == len(BOILERPLATE_RULES)
    assert all(rule.why for rule in BOILERPLATE_RULES)


# --------------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-31", "2024-05-31"),
        ("2024-05-31T10:00:00", "2024-05-31T10:00:00"),
        ("2024-05-31T10:00:00Z", "2024-05-31T10:00:00Z"),
        ("2024-05-31T12:00:00+02:00", "2024-05-31T10:00:00Z"),
        ("Fri, 31 May 2024 10:00:00 +0000", "2024-05-31T10:00:00Z"),
        ("2024-13-45", None),
        ("", None),
    ],
)
def test_parse_date(value: str, expected: str | None) -> None:
    assert parse_date(value) == expected


# --------------------------------------------------------------------------- page metadata


def _page(head: str, body: str = "") -> bytes:
    prose = "".join(f"<p>{line}</p>" for line in PROSE)
    return f"<html><head>{head}</head><body>{body}<div>{prose}</div></body></html>".encode()


def test_title_is_the_h1_when_the_title_tag_starts_with_it() -> None:
    page = _page("<title>Storm hits coast | Coast Agency</title>", "<h1>Storm hits coast</h1>")
    assert clean(page).title == "Storm hits coast"
    suffix = _page("<title>Ein Albtraum - DER SPIEGEL 52/2018</title>", "<h1>Ein Albtraum</h1>")
    assert clean(suffix).title == "Ein Albtraum"
    # A logo-sized <h1>, or one the title does not start with, is not the headline.
    logo = _page('<title>Storm hits coast | CN</title><meta property="og:title" '
                 'content="Storm hits coast">', "<h1>CN</h1>")
    assert clean(logo).title == "Storm hits coast"


def test_json_ld_gives_date_authors_headline_and_url() -> None:
    linked = ('<script type="application/ld+json">{"@context": "https://schema.org", '
              '"@graph": [{"@type": "WebPage"}, {"@type": "NewsArticle", "headline": '
              '"Storm hits coast", "datePublished": "2024-05-31T10:00:00+02:00", "author": '
              '[{"@type": "Person", "name": "Ana Ruiz"}, {"name": "Li Wei"}], '
              '"url": "https://news.example/2024/storm"}]}</script>')
    article = clean(_page(linked))
    assert article.published_at == "2024-05-31T08:00:00Z"
    assert article.authors == ["Ana Ruiz", "Li Wei"]
    assert article.title == "Storm hits coast"
    assert article.canonical_url == article.url == "https://news.example/2024/storm"
    broken = clean(_page('<script type="application/ld+json">{"@type": "NewsArt</script>'))
    assert broken.authors == [] and broken.published_at is None


def test_meta_author_and_relative_canonical() -> None:
    head = ('<meta name="author" content="Ana Ruiz and Li Wei"><link rel="canonical" '
            'href="/2024/storm"><meta property="og:url" content="https://news.example/x">')
    article = clean(_page(head))
    assert article.authors == ["Ana Ruiz", "Li Wei"]
    assert article.canonical_url == "https://news.example/2024/storm"
    # A relative canonical with nothing absolute to resolve it against is no URL.
    assert clean(_page('<link rel="canonical" href="/8003098">')).canonical_url is None


def test_date_from_the_url_when_the_page_has_none() -> None:
    head = '<link rel="canonical" href="https://www.cnn.com/2013/11/27/travel/storm/index.html">'
    assert clean(_page(head)).published_at == "2013-11-27"
    assert clean(_page('<link rel="canonical" href="https://x.example/2019/02/30/a">')).published_at is None


def test_declared_language_gives_way_to_detection_on_a_long_body() -> None:
    spanish = ("La tormenta llegó a la costa poco después de la medianoche con vientos de más de "
               "cien kilómetros por hora. Los equipos de emergencia trabajaron toda la noche "
               "para despejar las carreteras y devolver la luz a la región. Por la mañana, según "
               "las autoridades, casi toda la zona tenía de nuevo electricidad y las escuelas "
               "abrirían con normalidad el lunes siguiente.")
    page = f'<html lang="en"><body><p>{spanish}</p><p>{spanish}</p></body></html>'.encode()
    assert clean(page).language == "es"
    short = b'<html lang="en"><body><p>La tormenta lleg\xc3\xb3 a la costa.</p></body></html>'
    assert clean(short).language == "en"


# --------------------------------------------------------------------------- charsets

FRENCH = ("Le conseil municipal a approuvé le budget après un long débat mardi soir, et les "
          "élus ont promis une réponse rapide aux inquiétudes des habitants du quartier.")
RUSSIAN = ("Городской совет утвердил бюджет после долгих дебатов во вторник вечером, и "
           "депутаты пообещали быстро ответить на опасения жителей района.")


def _legacy_page(text: str, declared: str | None, encoding: str) -> bytes:
    meta = f'<meta charset="{declared}">' if declared else ""
    page = f"<!DOCTYPE html><html><head>{meta}<title>T</title></head><body>"
    return (page + f"<p>{text}</p><p>{text}</p></body></html>").encode(encoding)


def test_a_page_in_its_declared_legacy_charset_is_decoded() -> None:
    assert FRENCH in clean(_legacy_page(FRENCH, "windows-1252", "cp1252")).text
    japanese = "東京都は火曜日、新しい防災計画を発表し、住民に備えを呼びかけた。" * 3
    assert japanese in clean(_legacy_page(japanese, "shift_jis", "shift_jis")).text


def test_a_lying_declaration_gives_way_to_the_bytes() -> None:
    # "utf-8" on a windows-1252 page, "iso-8859-1" on a windows-1251 (Cyrillic) one.
    assert FRENCH in clean(_legacy_page(FRENCH, "utf-8", "cp1252")).text
    assert RUSSIAN in clean(_legacy_page(RUSSIAN, "iso-8859-1", "cp1251")).text
    assert RUSSIAN in clean(_legacy_page(RUSSIAN, None, "cp1251")).text


def test_only_whole_pages_may_be_in_a_legacy_charset() -> None:
    with pytest.raises(BadEncoding):
        clean(f"{FRENCH}\n{FRENCH}".encode("cp1252"))  # plain text: UTF-8 or nothing
    with pytest.raises(BadEncoding):
        clean(orjson.dumps({"text": "x"})[:-2] + " é\"}".encode("cp1252"))
