"""Surges and priorities (agents/signals/surge.py, priority.py) and how alerts carry them."""

from __future__ import annotations

import asyncio

import pytest

from agents.alert.agent import alert_on
from agents.alert.core import decide
from agents.alert.ratelimit import RateLimiter
from agents.signals.priority import priority_of
from agents.signals.surge import MIN_SOURCES, StreamPace, check_surge, story_baseline
from agents.watch.definitions import make_watch
from agents.watch.registry import WatchRegistry
from streams.records import Alert, Article, StorySummary, Watch, WatchHit

T0 = 1_800_000_000.0
HIT = WatchHit(watch_id="w1", watch_name="Taiwan Strait", terms=["Taiwan Strait"])


def story(*, age: float, sources: int, new_15m: int, new_1h: int | None = None) -> StorySummary:
    return StorySummary(first_seen=T0 - age, last_seen=T0, article_count=sources,
                        sources=[f"s{n}" for n in range(sources)], first_received=T0 - age,
                        new_sources_15m=new_15m, new_sources_1h=new_1h or new_15m)


def test_the_stream_pace_is_a_slow_average_one_story_barely_moves() -> None:
    pace = StreamPace()
    for value in range(1, 11):  # one story's articles as it grows
        pace.observe(value)
    assert pace.rate < 0.3
    assert check_surge(story(age=600, sources=3, new_15m=3), T0, pace.rate,
                       surging=False).fires
    for _ in range(3_000):
        pace.observe(2)  # a stream whose stories all spread fast
    assert pace.rate == pytest.approx(2.0, abs=0.01)
    assert StreamPace.from_dict(pace.to_dict()) == pace


def test_a_story_surges_past_its_own_and_the_streams_normal() -> None:
    quiet = story(age=6 * 3600, sources=4, new_15m=0)
    assert story_baseline(quiet, T0) == pytest.approx(4 / 23)
    assert not check_surge(quiet, T0, 0.0, surging=False).fires
    jump = story(age=6 * 3600, sources=4 + MIN_SOURCES, new_15m=MIN_SOURCES)
    check = check_surge(jump, T0, 0.0, surging=False)
    assert check.fires and check.surging
    assert check.signal.value == MIN_SOURCES and check.signal.threshold == MIN_SOURCES
    assert "3 new sources in 15 min" in check.signal.detail
    # The same jump on a day when every story spreads fast is no surge.
    assert not check_surge(jump, T0, 2.0, surging=False).fires


def test_a_surge_fires_once_and_ends_below_half_its_threshold() -> None:
    hot = story(age=600, sources=5, new_15m=5)
    assert check_surge(hot, T0, 0.0, surging=False).fires
    still = check_surge(hot, T0, 0.0, surging=True)
    assert not still.fires and still.surging
    cooling = check_surge(story(age=3600, sources=5, new_15m=1), T0, 0.0, surging=True)
    assert not cooling.fires and not cooling.surging


def test_priority_rule() -> None:
    assert priority_of(None, T0).level == "routine"
    assert priority_of(story(age=600, sources=4, new_15m=4), T0).level == "flash"
    assert priority_of(story(age=5 * 3600, sources=4, new_15m=4), T0).level == "urgent"
    assert priority_of(story(age=600, sources=2, new_15m=2), T0).level == "urgent"
    assert priority_of(story(age=5 * 3600, sources=1, new_15m=0), T0).level == "routine"
    assert priority_of(None, T0, surge=True).level == "flash"
    floored = priority_of(story(age=5 * 3600, sources=1, new_15m=0), T0, floor="urgent")
    assert floored.level == "urgent" and "watch's priority" in floored.reason
    # A floor never lowers.
    assert priority_of(None, T0, surge=True, floor="routine").level == "flash"


def _article(n: int, summary: StorySummary) -> Article:
    return Article(id=f"a{n}", title="T", text="B", source=f"s{n}", story_id="story-1",
                   received_at=T0, story=summary, watch_hits=[HIT])


def test_the_update_that_finds_a_surge_is_a_surge_alert_once() -> None:
    opened = decide(None, _article(0, story(age=7200, sources=1, new_15m=0)), HIT, now=T0)
    assert opened is not None
    state, alert = opened
    assert (alert.kind, alert.priority, alert.signal) == ("opened", "routine", None)
    results = []
    for n, new in enumerate([1, 3, 4, 2, 1, 0, 3], start=1):
        result = decide(state, _article(n, story(age=7200, sources=1 + new, new_15m=new)), HIT,
                        now=T0)
        assert result is not None
        state, alert = result
        results.append((alert.kind, alert.priority, state.surging))
    assert results == [
        ("update", "routine", False),
        ("surge", "flash", True),  # 3 new sources: the threshold on a quiet story
        ("update", "flash", True),  # still surging: no second surge alert
        ("update", "flash", True),  # 2 >= half the threshold
        ("update", "routine", False),  # ended
        ("update", "routine", False),
        ("surge", "flash", True),  # a second surge
    ]
    # The surge article redelivered: nothing.
    assert decide(state, _article(2, story(age=7200, sources=4, new_15m=3)), HIT, now=T0) is None


def test_a_state_stored_before_surges_loads() -> None:
    from agents.alert.agent import _load

    old = b'{"p":0,"t":1.0,"states":{"w1":{"alert_id":"x","watch_id":"w1","story_id":"s",' \
          b'"revision":2,"opened_at":1.0,"updated_at":2.0}}}'
    assert _load(old)["w1"].surging is False


def test_the_rate_limit_never_holds_a_flash() -> None:
    watch = make_watch("Taiwan Strait", rate_limit=1)
    hit = WatchHit(watch.id, watch.name, [watch.name])
    limiter = RateLimiter(window=300, default_limit=1)
    sent: list[Alert] = []

    async def send(_watch: Watch, alert: Alert) -> None:
        sent.append(alert)

    async def deliver(n: int, summary: StorySummary, flash_watch: Watch = watch) -> None:
        article = Article(id=f"a{n}", title="T", text="Taiwan Strait", source=f"s{n}",
                          story_id=f"story-{n}", received_at=T0, story=summary, watch_hits=[hit])
        await alert_on(article, {}, T0, watches=WatchRegistry([flash_watch]), limits=limiter,
                       send=send)

    slow = story(age=7200, sources=1, new_15m=0)
    asyncio.run(deliver(1, slow))
    asyncio.run(deliver(2, slow))  # held: over the limit of 1
    assert [a.priority for a in sent] == ["routine"]
    asyncio.run(deliver(3, story(age=600, sources=5, new_15m=5)))  # flash: through
    asyncio.run(deliver(4, story(age=600, sources=5, new_15m=5)))
    assert [a.priority for a in sent] == ["routine", "flash", "flash"]
    # A watch whose own priority is flash is never held either.
    urgent_watch = make_watch("Taiwan Strait", rate_limit=1, priority="flash")
    asyncio.run(deliver(5, slow, urgent_watch))
    assert sent[-1].priority == "flash" and sent[-1].article_id == "a5"


def test_watch_signal_settings_are_checked() -> None:
    from streams.errors import WatchError

    watch = make_watch("Taiwan Strait", priority="urgent", digest="daily", live=False,
                       webhook_format="slack", spike_hours=24, spike_days=30)
    assert (watch.priority, watch.digest, watch.live, watch.webhook_format) == \
        ("urgent", "daily", False, "slack")
    for bad in ({"priority": "high"}, {"digest": "weekly"}, {"live": "no"},
                {"webhook_format": "xml"}, {"spike_hours": 0}, {"spike_days": True},
                {"live": False}, {"colour": "red"}):
        with pytest.raises(WatchError):
            make_watch("Taiwan Strait", **bad)
