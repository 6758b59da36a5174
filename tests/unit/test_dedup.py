"""Unit tests of the dedup core: duplicates, stories, window, restore, determinism."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import pytest

from agents.clean.core import clean
from agents.dedup import DedupIndex, Verdict
from agents.tag import Tagger
from streams.records import Article

SEEDS = Path(__file__).resolve().parents[3] / "shared" / "seeds"
T0 = 1_717_000_000.0


def seed(name: str, article_id: str | None = None, source: str = "wire") -> Article:
    """A seed file as the dedup stage receives it: through the clean and tag stages' cores (so
    without the outlet's page furniture: "Posted In:" lists, "Read Next:" links, promos)."""
    path = next(SEEDS.glob(f"{name}_*.txt"))
    article = _tagger().tag(clean(path.read_bytes()))
    article.id, article.source = article_id or path.stem, source
    return article


@functools.cache
def _tagger() -> Tagger:
    return Tagger()


def art(article_id: str, title: str, text: str, *, at: str | None = None) -> Article:
    return Article(id=article_id, title=title, text=text, source=article_id, published_at=at)


FOOTBALL = (
    "Arsenal beat Chelsea three goals to one at the Emirates stadium on Saturday, with Bukayo "
    "Saka scoring twice in the second half. Mikel Arteta praised the defence after the match."
)
VOLCANO = (
    "An eruption of the Kilauea volcano in Hawaii forced the evacuation of two villages as lava "
    "flows crossed the main highway. Geologists expect seismic activity to continue for weeks."
)


def observe_all(index: DedupIndex, articles: list[Article], now: float = T0) -> list[Verdict]:
    return [index.observe(a, now + i) for i, a in enumerate(articles)]


def test_exact_duplicate_with_different_headline() -> None:
    index = DedupIndex()
    first, copy = observe_all(
        index, [art("a1", "Arsenal win", FOOTBALL), art("a2", "Gunners beat Blues", FOOTBALL + " ")]
    )
    assert first.kind == "unique" and first.duplicate_of is None
    assert copy.kind == "exact_duplicate" and copy.duplicate_of == "a1"
    assert copy.story_id == first.story_id
    assert copy.story.article_count == 2 and copy.story.sources == ["a1", "a2"]
    assert len(index) == 1  # exact copies are counted, not recorded


def test_the_same_message_again_is_a_repeat_and_not_counted() -> None:
    index = DedupIndex()
    first = index.observe(art("a1", "Arsenal win", FOOTBALL), T0)
    again = index.observe(art("a1", "Arsenal win", FOOTBALL), T0 + 5)
    assert again.kind == "repeat" and again.story_id == first.story_id
    assert again.story.article_count == 1 and again.changes == []


def near_copy_of_seed_000() -> Article:
    original = seed("000")
    lines = original.text.splitlines()
    lines += ["Copyright 2024 Syndicated Wire. All rights reserved."]  # its own footer
    lines[2] = "The dialogue lasted more than an hour, well beyond the expected time."
    return Article(id="copy", title="Defense chiefs meet in Singapore", text="\n".join(lines))


def test_near_duplicate_of_seed() -> None:
    index = DedupIndex()
    original = index.observe(seed("000"), T0)
    copy = index.observe(near_copy_of_seed_000(), T0 + 60)
    assert copy.kind == "near_duplicate"
    assert copy.duplicate_of == seed("000").id
    assert copy.story_id == original.story_id


def test_seeds_from_two_outlets_share_a_story() -> None:
    index = DedupIndex()
    first, second = observe_all(index, [seed("000", source="benzinga"), seed("003", source="dpa")])
    assert second.kind == "unique"
    assert second.story_id == first.story_id
    assert second.story.sources == ["benzinga", "dpa"]


def test_different_events_get_different_stories() -> None:
    index = DedupIndex()
    a, b, c = observe_all(
        index,
        [art("f", "Arsenal beat Chelsea", FOOTBALL), art("v", "Kilauea erupts", VOLCANO), seed("000")],
    )
    assert len({a.story_id, b.story_id, c.story_id}) == 3
    assert all(v.kind == "unique" for v in (a, b, c))


def test_published_at_is_story_time_and_arrival_time_drives_the_window() -> None:
    index = DedupIndex(window_seconds=3600)
    index.observe(art("old", "Arsenal win", FOOTBALL, at="2024-05-31T10:00:00Z"), T0)
    fresh = index.observe(art("new", "Kilauea", VOLCANO, at="2024-05-31T10:30:00+00:00"),
                          T0 + 1800)
    assert fresh.story.first_seen == T0 + 1800  # a story summary's times are arrival times
    # An article published long ago is kept for the window after it *arrived*.
    assert index.evict(T0 + 3000) == [] and len(index) == 2
    deletions = index.evict(T0 + 3600 + 1)  # "old" arrived at T0: out; "new" stays
    assert ("a:old", None) in deletions and len(index) == 1
    again = index.observe(art("again", "Arsenal again", FOOTBALL, at="2024-05-31T11:20:00Z"),
                          T0 + 3700)
    assert again.kind == "unique"  # its first copy left the window


def test_an_undated_article_joins_a_dated_story_of_the_same_event() -> None:
    index = DedupIndex()
    dated = clean(next(SEEDS.glob("003_*.txt")).read_bytes())
    undated = clean(next(SEEDS.glob("000_*.txt")).read_bytes())
    assert dated.published_at == "2024-05-31" and undated.published_at is None
    first = index.observe(dated, T0)
    second = index.observe(undated, T0 + 60)  # no date at all: time is no evidence
    assert (first.kind, second.kind) == ("unique", "unique")
    assert second.story_id == first.story_id


def test_a_redelivered_article_is_a_repeat_and_a_republished_one_an_exact_duplicate() -> None:
    # The same raw message again (received_at equal: a redelivery after a crash here or
    # upstream) is a repeat; the same id in a new raw message is the publisher's copy.
    index = DedupIndex()
    original = dataclasses.replace(art("a", "Arsenal win", FOOTBALL), received_at=T0)
    first = index.observe(original, T0)
    repeat = index.observe(dataclasses.replace(original), T0 + 1)
    assert (repeat.kind, repeat.duplicate_of, repeat.story_id) == ("repeat", "a", first.story_id)
    again = index.observe(dataclasses.replace(original, received_at=T0 + 60), T0 + 60)
    assert (again.kind, again.duplicate_of) == ("exact_duplicate", "a")
    for verdict in (repeat, again):
        assert verdict.changes == [] and verdict.story.article_count == 1


def test_size_cap_evicts_oldest_and_their_stories() -> None:
    index = DedupIndex(max_articles=2)
    verdicts = observe_all(
        index, [art("f", "Arsenal", FOOTBALL), art("v", "Kilauea", VOLCANO), seed("003")]
    )
    deletions = index.evict(T0 + 10)
    assert deletions == [("a:f", None), (f"s:{verdicts[0].story_id}", None)]
    assert len(index) == 2 and index.story_count == 2


def test_restore_gives_the_same_verdicts() -> None:
    original = DedupIndex()
    state: dict[str, bytes] = {}
    articles = [art("f", "Arsenal", FOOTBALL), seed("000"), art("v", "Kilauea", VOLCANO)]
    for verdict in observe_all(original, articles):
        for key, value in verdict.changes:
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
    assert all(len(v) <= 2048 for k, v in state.items() if k.startswith("a:"))
    restored = DedupIndex()
    for key in sorted(state, reverse=True):  # any order
        restored.restore(key, state[key])
    assert len(restored) == len(original) == 3
    probes = [near_copy_of_seed_000(), seed("003"), art("x", "Arsenal again", FOOTBALL)]
    for probe in probes:
        a, b = original.observe(probe, T0 + 100), restored.observe(probe, T0 + 100)
        assert (a.kind, a.duplicate_of, a.story_id, a.story) == (
            b.kind,
            b.duplicate_of,
            b.story_id,
            b.story,
        )
    assert restored.observe(near_copy_of_seed_000(), T0).kind == "repeat"


@pytest.mark.parametrize("run", range(2))
def test_same_input_order_gives_same_ids(run: int) -> None:
    articles = [seed("000"), seed("003"), art("f", "Arsenal", FOOTBALL), near_copy_of_seed_000()]
    first = [(v.kind, v.duplicate_of, v.story_id) for v in observe_all(DedupIndex(), articles)]
    second = [(v.kind, v.duplicate_of, v.story_id) for v in observe_all(DedupIndex(), articles)]
    assert first == second
    assert first[0][2] == first[1][2] == first[3][2] != first[2][2]


def test_title_only_articles() -> None:
    index = DedupIndex()
    a = index.observe(art("h1", "Malaysia Airlines flight MH370 missing over South China Sea", ""), T0)
    b = index.observe(art("h2", "Malaysia Airlines flight MH370 missing over South China Sea", ""), T0)
    c = index.observe(art("h3", "Arsenal beat Chelsea at the Emirates", ""), T0)
    assert a.kind == "unique" and b.kind == "exact_duplicate" and b.duplicate_of == "h1"
    assert c.story_id != a.story_id


@pytest.mark.parametrize(("url", "words"), [
    ("http://www.latimes.com/business/money/la-fi-mo-federal-reserve-plosser-stimulus-economy-"
     "20140310,0,1312750.story\\?track=rss",
     ["la", "fi", "mo", "federal", "reserve", "plosser", "stimulus", "economy"]),
    ("http://chicagoist.com/2014/03/10/the_miley_cyrus_bangerz_tour_is_bot.php",
     ["the", "miley", "cyrus", "bangerz", "tour", "is", "bot"]),
    ("https://timesofindia.indiatimes.com/tech/tech-news/hardware/Apple-releases-iOS-7-1-"
     "with-CarPlay/articleshow/31804455.cms", ["apple", "releases", "ios", "with", "carplay"]),
    ("http://www.usatoday.com/videos/money/business/2014/03/10/6252067/", []),  # no slug
    ("https://example.com/world-news/", []),  # a section, not a summary
    ("https://example.com/" + "a-" * 5000, []),  # over the length limit
    ("not a url", []),
    (None, []),
])
def test_slug_words(url: str | None, words: list[str]) -> None:
    from agents.dedup.terms import slug_words

    assert slug_words(url) == words


def test_a_headline_only_article_reads_its_url_slug_but_stays_a_copy_by_its_headline() -> None:
    from agents.dedup import minhash
    from agents.dedup.index import prepare

    title = "Fed official says weak data caused by weather"
    slugged = Article(id="u1", title=title, text="",
                      url="https://example.com/news/fed-plosser-sees-high-bar-for-taper-change")
    bare = Article(id="u2", title=title, text="")
    for batch in ([slugged, bare], [slugged, bare] * 3):  # one by one, and vectorised
        one, two = prepare(batch)[:2]
        assert "plosser" in one.vector and "plosser" not in two.vector
        assert one.title_only and one.body_hash == two.body_hash
        assert (one.signature == two.signature).all()
        assert (one.signature == minhash.signature(title.lower().split())).all()
    index = DedupIndex()
    assert index.observe(slugged, T0).kind == "unique"
    assert index.observe(bare, T0).kind == "exact_duplicate"


def _reference_vector(title: list[str], body: list[str]) -> dict[str, float]:
    """term_vector without the bigram pruning: every adjacent pair of kept words counted."""
    import itertools
    import math
    from collections import Counter

    from agents.dedup import terms

    words: Counter[str] = Counter(body)
    pairs: Counter[tuple[str, str]] = Counter(itertools.pairwise(body))
    for w in title:
        words[w] += terms.TITLE_BOOST
    for p in itertools.pairwise(title):
        pairs[p] += terms.TITLE_BOOST
    kept = {w: terms.idf(w) for w in words if terms.idf(w) >= terms.MIN_IDF and len(w) > 1}
    if body:  # a full text weighs words by (capped) idf squared
        kept = {w: terms.full_text_weight(w, v) for w, v in kept.items()}
    weights = {w: (1 + math.log(words[w])) * v for w, v in kept.items()}
    for (a, b), n in pairs.items():
        if a in kept and b in kept:
            weights[f"{a} {b}"] = (1 + math.log(n)) * (kept[a] + kept[b]) * terms.BIGRAM_WEIGHT / 2
    return terms.normalised(terms.top(weights.items(), terms.TOP_TERMS))


def test_bigram_pruning_changes_no_vector() -> None:
    from agents.dedup.terms import term_vector
    from streams.text import tokens

    for article in [seed("000"), seed("003"), art("f", "Arsenal beat Chelsea", FOOTBALL)]:
        title, body = tokens(article.title), tokens(article.text)
        assert term_vector(title, body) == _reference_vector(title, body)


def test_entities_add_canonical_name_terms() -> None:
    from agents.dedup.terms import ENTITY_PREFIX, term_vector
    from streams.text import tokens

    title, body = tokens("Fed's Plosser: taper pace may be too slow"), []
    plain = term_vector(title, body)
    tagged = term_vector(title, body, [("Federal Reserve", 1), ("Charles Plosser", 1)])
    assert f"{ENTITY_PREFIX}charles plosser" in tagged and not any(
        t.startswith(ENTITY_PREFIX) for t in plain
    )
    # "Fed" and "Federal Reserve" headlines now share a term.
    other = term_vector(tokens("Federal Reserve holds rates"), [], [("Federal Reserve", 1)])
    assert f"{ENTITY_PREFIX}federal reserve" in tagged.keys() & other.keys()


def test_minhash_estimates_jaccard_and_lsh_forgets() -> None:
    from agents.dedup import minhash
    from streams.text import tokens

    words = tokens(seed("000").text)
    sig = minhash.signature(words)
    assert sig.dtype.name == "uint32" and len(sig) == minhash.PERMUTATIONS
    assert minhash.similarity(sig, minhash.signature(list(words))) == 1.0
    half = words[: len(words) // 2]
    shingles = {tuple(words[i : i + 3]) for i in range(len(words) - 2)}
    part = {tuple(half[i : i + 3]) for i in range(len(half) - 2)}
    exact = len(part) / len(shingles)
    assert abs(minhash.similarity(sig, minhash.signature(half)) - exact) < 0.2
    lsh = minhash.LSHIndex()
    keys = minhash.band_keys(sig)
    assert len(set(keys)) == minhash.BANDS
    lsh.add("a", keys)
    lsh.add("a", keys)  # idempotent
    assert lsh.candidates(keys) == ["a"]
    lsh.remove("a", keys)
    assert lsh.candidates(keys) == [] and len(lsh) == 0


def test_batched_features_equal_the_reference_article_by_article() -> None:
    """agents.dedup.batch (numpy over a batch) must give the very floats of terms.term_vector
    and minhash.signature: real BBC articles plus edge cases (no body, no text, two words)."""
    import gzip
    import json

    import numpy as np

    from agents.dedup import batch, minhash, terms
    from streams.text import tokens

    with gzip.open(SEEDS.parent / "data" / "bbc_news_2225.jsonl.gz", "rt") as fh:
        rows = [json.loads(line) for _, line in zip(range(150), fh, strict=False)]
    docs = [(tokens(r.get("title") or ""), tokens(r.get("text") or ""), []) for r in rows]
    docs += [(tokens(seed(n).title), tokens(seed(n).text), [("Japan", 3), ("Philippines", 2)])
             for n in ("000", "003")]
    docs += [(tokens("Headline only, no body"), [], [("Federal Reserve", 1)]), ([], [], []),
             (tokens("Two"), tokens("words here"), []), ([], tokens("x"), [])]
    vectors, signatures = batch.features(docs)
    for (title, body, entities), vector, signature in zip(docs, vectors, signatures, strict=True):
        reference = terms.term_vector(title, body, entities)
        assert list(vector.items()) == list(reference.items())
        assert np.array_equal(signature, minhash.signature(body or title))


def test_small_and_large_batches_prepare_the_same_features() -> None:
    import numpy as np

    from agents.dedup.index import VECTORISE_FROM, prepare

    articles = [seed("000"), seed("003"), art("f", "Arsenal beat Chelsea", FOOTBALL),
                art("h", "Headline only", "")] * VECTORISE_FROM
    one_by_one = [p for a in articles for p in prepare([a])]
    together = prepare(articles)
    for a, b in zip(one_by_one, together, strict=True):
        assert (a.body_hash, a.title_only, list(a.vector.items())) == (
            b.body_hash, b.title_only, list(b.vector.items()))
        assert np.array_equal(a.signature, b.signature)


def test_years_mentioned_keep_look_alike_events_apart_and_survive_a_restore() -> None:
    from agents.dedup.stories import MAX_STORY_YEARS, YEAR_CONFLICT, Story, StoryClusterer
    from agents.dedup.terms import years

    assert years(["in", "2013", "and", "1066", "2013", "42"], ["1999"]) == {"2013", "1999"}
    clusterer = StoryClusterer()
    vec = {"kilauea": 0.8, "eruption": 0.6}
    clusterer.add("s1", vec, None, T0, "a", years=frozenset({"2018"}))
    _, shared = clusterer.best(vec, None, years=frozenset({"2018", "2024"}))
    _, other = clusterer.best(vec, None, years=frozenset({"2024"}))
    assert other == pytest.approx(shared * (1 - YEAR_CONFLICT)) and other < shared
    assert clusterer.best(vec, None)[1] == shared  # no year mentioned: no evidence either way
    for year in range(2000, 2020):
        clusterer.add("s1", vec, None, T0, "a", years=frozenset({str(year), "2018"}))
    story = clusterer.stories["s1"]
    assert len(story.years) == MAX_STORY_YEARS and next(iter(story.years)) == "2018"
    saved = story.to_dict()
    assert Story.from_dict("s1", saved).years == story.years
    del saved["y"]  # a story saved before years were kept
    assert Story.from_dict("s1", saved).years == {}


def test_an_article_whose_story_never_reached_the_state_is_forgotten_not_a_crash() -> None:
    # A worker killed between the article's entry and its story's: the fault suite saw the
    # restored index raise KeyError (internal_error) on the article's redelivery.
    index = DedupIndex()
    original = art("a", "Arsenal win", FOOTBALL)
    verdict = index.observe(original, T0)
    restored = DedupIndex()
    for key, value in verdict.changes:
        if key.startswith("a:"):
            restored.restore(key, value)  # the story's entry was lost
    assert restored.drop_orphans() == ["a"] and len(restored) == 0
    again = restored.observe(original, T0 + 5)  # judged afresh, no KeyError
    assert again.kind == "unique" and again.story_id == verdict.story_id
