"""Shared foundations: normalisation, record encoding, settings."""

from __future__ import annotations

import pytest

from streams.errors import BadRecord, ConfigError
from streams.records import Alert, Article, Entity, Match, StorySummary, WatchHit, decode, encode
from streams.settings import load_settings
from streams.text import normalize, token_spans, tokens


@pytest.mark.parametrize(("text", "expected"), [
    ("Crisis-Communications", ["crisis", "communications"]),
    ("Taiwan Strait's waters", ["taiwan", "strait", "s", "waters"]),
    ("“wrong signals” — Zürich", ["wrong", "signals", "zurich"]),
    ("snake_case_word", ["snake", "case", "word"]),
    ("", []),
])
def test_tokens_fold_case_punctuation_and_diacritics(text: str, expected: list[str]) -> None:
    assert tokens(text) == expected


def test_token_spans_point_into_the_original_text() -> None:
    text = "Café in the Taiwan Strait"
    for token in token_spans(text):
        assert normalize(text[token.start:token.end]) == token.text


def test_article_round_trips_with_nested_records() -> None:
    article = Article(id="a1", title="T", text="B", entities=[Entity("Dong Jun", "person", 2)],
                      watch_hits=[WatchHit("w", "W", ["x"])],
                      story=StorySummary(1.0, 2.0, 3, ["S"]))
    assert decode(Article, encode(article)) == article
    alert = Alert(alert_id="al", kind="opened", revision=1, watch_id="w", watch_name="W",
                  story_id="s", article_id="a1", title="T", url=None, source=None,
                  published_at=None, sources=[], article_ids=["a1"], terms=["x"],
                  matches=[Match("x", "text", 0, 1, "x")], opened_at=1.0, updated_at=1.0,
                  received_at=1.0)
    assert decode(Alert, encode(alert)) == alert


def test_schema_1_articles_with_evidence_on_their_hits_still_decode() -> None:
    old = (b'{"id": "a", "title": "t", "text": "b", "schema_version": 1, "watch_hits": [{"watch_id":'
           b' "w", "watch_name": "W", "terms": ["x"], "matches": [{"term": "x", "field": "text",'
           b' "start": 0, "end": 1, "snippet": "x"}]}]}')
    assert decode(Article, old).watch_hits == [WatchHit("w", "W", ["x"])]


def test_decode_ignores_unknown_fields_and_rejects_bad_records() -> None:
    assert decode(Article, b'{"id": "x", "title": "t", "text": "b", "future": 1}').id == "x"
    with pytest.raises(BadRecord):
        decode(Article, b'{"title": "no id"}')
    with pytest.raises(BadRecord):
        decode(Article, b"[1, 2]")
    with pytest.raises(BadRecord):
        decode(Alert, b"not json")


def test_settings_from_prefixed_environment() -> None:
    settings = load_settings({"WIREWATCH_TOPIC_PREFIX": "p.", "WIREWATCH_WEB_PORT": "7000",
                              "WIREWATCH_DEDUP_WINDOW_HOURS": "1.5", "BROKER_URL": "ignored"})
    assert (settings.topic_prefix, settings.web_port, settings.dedup_window_hours) == \
        ("p.", 7000, 1.5)
    assert settings.embedded


@pytest.mark.parametrize("env", [{"WIREWATCH_WEB_PORT": "x"}, {"WIREWATCH_LOG_FORMAT": "xml"},
                                 {"WIREWATCH_MAX_MESSAGE_BYTES": "0"}])
def test_invalid_settings_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        load_settings(env)
