"""Story velocity (agents/signals/velocity.py) and its place on news.stories records."""

from __future__ import annotations

import orjson

from agents.dedup.index import DedupIndex
from agents.dedup.stories import Story
from agents.signals.velocity import MAX_RECENT_SOURCES, Velocity, VelocityCounts
from streams.records import Article

T0 = 1_800_000_000.0


def test_counts_articles_and_sources_per_window() -> None:
    pace = Velocity()
    for minute, source in [(0, "a"), (10, "b"), (50, "a"), (55, "c"), (58, "c")]:
        pace.observe(T0 + minute * 60, source)
    assert pace.counts() == VelocityCounts(
        first_received=T0, articles_15m=3, sources_15m=2, new_sources_15m=1,
        articles_1h=5, sources_1h=3, new_sources_1h=3,
    )


def test_old_minutes_and_quiet_sources_leave_the_windows() -> None:
    pace = Velocity()
    pace.observe(T0, "a")
    pace.observe(T0 + 2 * 3600, "b")
    counts = pace.counts()
    assert (counts.articles_1h, counts.sources_1h, counts.new_sources_1h) == (1, 1, 1)
    assert list(pace.last_by_source) == ["b"]
    assert len(pace.minutes) == 1


def test_a_late_article_counts_in_its_own_minute() -> None:
    pace = Velocity()
    pace.observe(T0 + 1800, "a")
    pace.observe(T0 + 60, "b")  # arrived late, still within the hour
    pace.observe(T0 - 3600, "c")  # older than the hour before the newest: not counted
    counts = pace.counts()
    assert counts.articles_1h == 2
    assert counts.articles_15m == 1
    assert counts.new_sources_1h == 2


def test_sources_are_capped() -> None:
    pace = Velocity()
    for i in range(MAX_RECENT_SOURCES + 50):
        pace.observe(T0 + i, f"s{i}")
    assert len(pace.last_by_source) == MAX_RECENT_SOURCES
    assert "s0" not in pace.last_by_source  # the longest quiet went first
    assert pace.counts().articles_15m == MAX_RECENT_SOURCES + 50


def test_round_trips_through_story_state() -> None:
    story = Story("s1", first_seen=T0, last_seen=T0)
    story.velocity.observe(T0, "a")
    story.velocity.observe(T0 + 30, "b")
    restored = Story.from_dict("s1", orjson.loads(orjson.dumps(story.to_dict())))
    assert restored.velocity == story.velocity
    # A story stored before velocity existed starts with empty windows.
    old = story.to_dict()
    del old["v"]
    assert Story.from_dict("s1", old).velocity == Velocity()


def _article(i: int, source: str, received: float, text: str) -> Article:
    return Article(id=f"a{i}", title="Ships gather in the Taiwan Strait", text=text,
                   source=source, received_at=received)


def test_story_summaries_carry_the_pace_on_event_time() -> None:
    index = DedupIndex()
    body = ("Chinese warships gathered in the Taiwan Strait on Monday as the defence ministry "
            "in Taipei reported drills near the median line for a third day.")
    verdicts = [
        index.observe(_article(i, source, T0 + i * 120, body), now=T0 + 999_999)
        for i, source in enumerate(["Reuters", "AP", "Reuters", "BBC"])
    ]
    last = verdicts[-1].story
    assert {v.story_id for v in verdicts} == {verdicts[0].story_id}
    assert (last.articles_15m, last.sources_15m, last.new_sources_15m) == (4, 3, 3)
    assert (last.articles_1h, last.sources_1h) == (4, 3)
    # A redelivery counts nothing. (Of an exact copy, which the stage drops, it would count
    # again: exact copies are not remembered by id.)
    again = index.observe(_article(0, "Reuters", T0, body), now=T0 + 999_999)
    assert again.kind == "repeat"
    assert again.story.articles_15m == 4
