"""Entity trends (agents/trends/core.py): counting, the sketch, the score, the bounds."""

from __future__ import annotations

import pytest

from agents.trends.core import BASELINE_HOURS, HOUR, MIN_MENTIONS, TrendCounter, entity_key, trend_score

T0 = 1_800_000_000.0 // HOUR * HOUR


def test_the_score_is_a_variance_stabilised_difference() -> None:
    assert trend_score(4.0, 4.0) == pytest.approx(0.0)
    # The same jump means more for a rare name than for an everyday one.
    assert trend_score(20, 1) > trend_score(120, 100) > 0
    assert trend_score(0, 5) < 0


def _steady(counter: TrendCounter, hours: int) -> None:
    """``hours`` of news before T0: Biden named twice an hour, Taipei once."""
    for h in range(hours, 0, -1):
        t = T0 - h * HOUR + 60
        counter.add(t, [("Joe Biden", "person"), ("Taipei", "place")])
        counter.add(t + 60, [("Joe Biden", "person")])


def test_a_new_name_trends_and_the_everyday_ones_do_not() -> None:
    counter = TrendCounter()
    _steady(counter, 24)
    for n in range(12):  # a burst in the last hour
        counter.add(T0 + 100 + n, [("Lai Ching-te", "person"), ("Joe Biden", "person")])
    trends = counter.trends(T0 + 1800)
    assert [t.key for t in trends][:1] == [entity_key("person", "Lai Ching-te")]
    lai = trends[0]
    assert lai.mentions_1h >= 12 and lai.baseline_per_hour == 0 and lai.baseline_hours == 23
    assert entity_key("place", "Taipei") not in {t.key for t in trends}


def test_an_everyday_name_trends_when_far_above_its_own_normal() -> None:
    counter = TrendCounter()
    _steady(counter, 24)
    for n in range(40):
        counter.add(T0 + 100 + n, [("Joe Biden", "person")])
    (trend,) = [t for t in counter.trends(T0 + 1800) if t.name == "Joe Biden"]
    assert trend.baseline_per_hour == pytest.approx(2.0, abs=0.1)


def test_nothing_trends_before_the_stream_has_history_or_under_min_mentions() -> None:
    counter = TrendCounter()
    for n in range(30):
        counter.add(T0 + n, [("Lai Ching-te", "person")])
    assert counter.trends(T0 + 600) == []  # the stream's first hour
    quiet = TrendCounter()
    _steady(quiet, 5)
    for n in range(MIN_MENTIONS - 1):
        quiet.add(T0 + n, [("Lai Ching-te", "person")])
    assert quiet.trends(T0 + 600) == []


def test_an_article_counts_once_per_entity() -> None:
    counter = TrendCounter()
    counter.add(T0, [("Taipei", "place"), ("TAIPEI", "place"), ("Taipei", "place")])
    assert counter.count(entity_key("place", "taipei"), int(T0 // HOUR)) == 1


def test_evicted_entities_keep_their_history_in_the_sketch() -> None:
    counter = TrendCounter(max_tracked=50)
    _steady(counter, 6)
    for n in range(200):
        counter.add(T0 - 2 * HOUR + n, [(f"Name {n}", "person")])
    assert len(counter.tracked) <= 50
    dropped = counter.drain_dropped()
    assert dropped and counter.drain_dropped() == set()
    gone = next(iter(dropped))
    # Not tracked any more: the sketch answers, never below the truth.
    assert counter.count(gone, int((T0 - 2 * HOUR) // HOUR)) >= 1
    # Tracked again, it starts from the sketch's past hours.
    counter.add(T0 + 10, [(counter_name(gone), "person")])
    assert counter.tracked[gone].get(int((T0 - 2 * HOUR) // HOUR), 0) >= 1


def counter_name(key: str) -> str:
    return key.partition(":")[2].title()


def test_state_is_bounded_in_time_and_round_trips() -> None:
    counter = TrendCounter()
    _steady(counter, BASELINE_HOURS + 30)
    assert len(counter.sketches) <= BASELINE_HOURS + 2
    assert all(len(c) <= BASELINE_HOURS + 2 for c in counter.tracked.values())
    back = TrendCounter.from_dict(counter.to_dict())
    for hour in counter.sketches:
        back.load_sketch(hour, counter.sketch_bytes(hour) or b"")
    assert back.trends(T0 + 1800) == counter.trends(T0 + 1800)
    key = entity_key("person", "joe biden")
    assert back.count(key, int(T0 // HOUR) - 3) == counter.count(key, int(T0 // HOUR) - 3) == 2
