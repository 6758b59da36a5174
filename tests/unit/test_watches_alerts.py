"""Alert decisions (pure functions); watch parsing and matching are in test_watches.py."""

from __future__ import annotations

from agents.alert.core import MAX_TRACKED_ARTICLES, alert_id_for, decide
from streams.records import Article, WatchHit


def _article(article_id: str, source: str | None = "Wire") -> Article:
    return Article(id=article_id, title="T", text="B", source=source, story_id="story-1",
                   received_at=100.0)


HIT = WatchHit(watch_id="w1", watch_name="Taiwan Strait", terms=["Taiwan Strait"])


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


def _evict_by_full_scan(table: dict[bytes, tuple[int, float]], partition: int, horizon: float,
                        max_open: int) -> list[bytes]:
    """The rule as the alert agent applied it before OpenAlerts: decode everything, sort."""
    mine = sorted((t, key) for key, (p, t) in table.items() if p == partition)
    overflow = max(0, len(table) - max_open)
    return [key for i, (t, key) in enumerate(mine) if t < horizon or i < overflow]


def test_open_alerts_evict_what_a_full_scan_would() -> None:
    import random

    from agents.alert.expiry import OpenAlerts

    rng = random.Random(5)
    table: dict[bytes, tuple[int, float]] = {}
    index = OpenAlerts()
    index.rebuild([])
    for step in range(20_000):
        key = f"story-{rng.randrange(3_000)}".encode()
        partition = int(key[6:]) % 4  # a key always lives in one partition
        table[key] = (partition, float(step))
        index.touch(key, partition, float(step))
        if step % 997 == 0:
            partition, horizon = rng.randrange(4), step - rng.choice([500.0, 5_000.0])
            expected = _evict_by_full_scan(table, partition, horizon, max_open=1_500)
            overflow = max(0, len(table) - 1_500)
            assert index.due(partition, horizon, overflow) == expected
            for key in expected:
                del table[key]
            assert len(index) == len(table)
    restored = OpenAlerts()
    restored.rebuild((key, p, t) for key, (p, t) in table.items())
    assert not restored.stale and restored.updated == index.updated
    assert restored.updated == {key: t for key, (_, t) in table.items()}
    assert restored.due(2, 19_000.0, 0) == index.due(2, 19_000.0, 0)
