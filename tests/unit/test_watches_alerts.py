"""Watch parsing and matching, and alert decisions (pure functions)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.alert.core import MAX_TRACKED_ARTICLES, alert_id_for, decide
from agents.watches import WatchMatcher, WatchRegistry, load_watch_file, make_watch, parse_terms
from streams.errors import WatchError
from streams.records import Article, WatchHit


def test_query_phrases_split_on_or_and_lose_quotes() -> None:
    assert parse_terms('"crisis communications" OR crisis hotline') == \
        ["crisis communications", "crisis hotline"]


@pytest.mark.parametrize("query", ["", "  ", '""', "x" * 1001, " OR ".join(["a"] * 51)])
def test_bad_queries_are_refused(query: str) -> None:
    with pytest.raises(WatchError):
        parse_terms(query)


def test_watch_id_derives_from_the_folded_name() -> None:
    assert make_watch("Taiwan Strait").id == make_watch("taiwan-strait ").id
    assert make_watch("Taiwan Strait").id != make_watch("South China Sea").id


def test_matching_folds_hyphens_possessives_and_case() -> None:
    matcher = WatchMatcher([make_watch("crisis communications"), make_watch("Taiwan Strait")])
    text = ("He welcomed a crisis-communications group. Drills in the Taiwan Strait's waters "
            "and the TAIWAN STRAIT.")
    hits = {h.watch_name: h for h in matcher.match("A headline", text)}
    assert set(hits) == {"crisis communications", "Taiwan Strait"}
    strait = hits["Taiwan Strait"]
    assert len(strait.matches) == 2
    for match in strait.matches:
        assert text[match.start:match.end].lower() == "taiwan strait"
        assert text[match.start:match.end] in match.snippet


def test_a_phrase_must_match_whole_tokens_in_order() -> None:
    matcher = WatchMatcher([make_watch("Taiwan Strait")])
    assert matcher.match("", "Strait of Taiwan; Taiwanese straits") == []


def test_title_matches_report_the_title_field() -> None:
    matcher = WatchMatcher([make_watch("Taiwan Strait")])
    (hit,) = matcher.match("Tension in the Taiwan Strait", "Nothing here.")
    assert [m.field for m in hit.matches] == ["title"]


def test_registry_applies_updates_and_tombstones() -> None:
    watch = make_watch("Taiwan Strait")
    registry = WatchRegistry()
    registry.apply(watch.id, watch)
    assert registry.matcher.match("", "the Taiwan Strait")
    registry.apply(watch.id, None)
    assert not registry.matcher.match("", "the Taiwan Strait") and len(registry) == 0


def test_watch_file_lines(tmp_path: Path) -> None:
    path = tmp_path / "w.txt"
    path.write_text("# comment\n\nStrait: Taiwan Strait\ncrisis communications\n")
    assert [(w.name, w.query) for w in load_watch_file(path)] == \
        [("Strait", "Taiwan Strait"), ("crisis communications", "crisis communications")]
    path.write_text("Bad: \"\"\n")
    with pytest.raises(WatchError, match=r"w\.txt:1"):
        load_watch_file(path)


def _article(article_id: str, source: str | None = "Wire") -> Article:
    return Article(id=article_id, title="T", text="B", source=source, story_id="story-1",
                   received_at=100.0)


HIT = WatchHit(watch_id="w1", watch_name="Taiwan Strait", terms=["Taiwan Strait"], matches=[])


def test_first_article_opens_later_articles_update_redelivery_is_silent() -> None:
    state, opened = decide(None, _article("a"), HIT, now=200.0) or (None, None)
    assert opened and opened.kind == "opened" and opened.revision == 1
    assert opened.alert_id == alert_id_for("w1", "story-1")
    assert decide(state, _article("a"), HIT, now=201.0) is None
    state2, update = decide(state, _article("b", "Other"), HIT, now=202.0) or (None, None)
    assert update and update.kind == "update" and update.revision == 2
    assert update.alert_id == opened.alert_id
    assert update.sources == ["Wire", "Other"] and update.article_ids == ["a", "b"]
    assert state2 and state2.opened_at == 200.0


def test_alert_lists_are_capped() -> None:
    state, _ = decide(None, _article("a0"), HIT, now=1.0) or (None, None)
    for i in range(1, MAX_TRACKED_ARTICLES + 50):
        result = decide(state, _article(f"a{i}", f"S{i}"), HIT, now=float(i))
        assert result is not None
        state = result[0]
    assert state is not None
    assert len(state.article_ids) == MAX_TRACKED_ARTICLES
    assert state.revision == MAX_TRACKED_ARTICLES + 50
