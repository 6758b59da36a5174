"""Watch spikes and digests (agents/signals/spike.py, digest.py)."""

from __future__ import annotations

import orjson
import pytest

from agents.signals.digest import (
    GRACE_SECONDS,
    IDLE_SECONDS,
    MAX_STORIES,
    DigestState,
    digest_alert,
    period_of,
)
from agents.signals.spike import MIN_HITS, SpikeState, hits_of, spike_alert
from streams.records import Alert, decode, encode

HOUR = 3600.0
T0 = 1_800_000_000.0 // 86400 * 86400  # a midnight


def test_hits_count_revisions_and_held_alerts() -> None:
    assert [hits_of(k, 4) for k in ("opened", "update", "surge", "summary", "spike")] == \
        [1, 1, 1, 4, 0]


def test_no_history_no_spike_then_the_hour_is_held_to_its_baseline() -> None:
    state = SpikeState()
    assert state.add(T0, 50) == []  # nothing to compare with
    for hour in range(1, 13):  # 12 quiet hours: 1 hit each
        assert state.add(T0 + hour * HOUR, 1) == []
    hour13 = T0 + 13 * HOUR
    fired = []
    for _ in range(10):
        fired += state.add(hour13, 1)
    # Baseline: the previous 12 hours average (50 + 11 * 1 - ... ) -> the mean of hours 1..12.
    (spike,) = [s for s in fired if s.window == "1h"]
    assert spike.value == pytest.approx(max(MIN_HITS, 3 * 1 + 2 * 1))  # fired on crossing
    assert spike.baseline == pytest.approx(1.0)
    assert "hits this hour" in spike.detail
    # Once per hour: more hits in the same hour raise nothing more.
    assert [s for s in state.add(hour13, 20) if s.window == "1h"] == []


def test_a_watch_baseline_setting_changes_the_comparison() -> None:
    state = SpikeState()
    state.add(T0, 30)  # a busy hour long ago
    for hour in range(1, 4):
        state.add(T0 + hour * HOUR, 1)
    # Against the last 2 hours (mean 1) 6 hits is a spike; against 12 (mean ~8.25) not.
    short, long = SpikeState.from_dict(state.to_dict()), SpikeState.from_dict(state.to_dict())
    t = T0 + 4 * HOUR
    assert any(s.window == "1h" for _ in range(6) for s in short.add(t, 1, spike_hours=2))
    assert not any(s.window == "1h" for _ in range(6) for s in long.add(t, 1, spike_hours=12))


def test_day_spike_against_previous_days() -> None:
    state = SpikeState()
    for day in range(14):
        state.add(T0 + day * 86400 + 5 * HOUR, 2)
    fired = [s for _ in range(12) for s in state.add(T0 + 14 * 86400 + HOUR, 1)]
    assert [s.window for s in fired].count("1d") == 1
    day = next(s for s in fired if s.window == "1d")
    assert day.baseline == pytest.approx(2.0)


def test_spike_state_is_bounded_and_round_trips() -> None:
    state = SpikeState()
    for hour in range(2_000):
        state.add(T0 + hour * HOUR, 1)
    assert len(state.hours) <= 14 * 24 + 25
    assert SpikeState.from_dict(orjson.loads(orjson.dumps(state.to_dict()))) == state


def test_spike_record_ids_are_per_watch_window_and_period() -> None:
    state = SpikeState()
    for hour in range(3):
        state.add(T0 + hour * HOUR, 1)
    signal = next(s for _ in range(9) for s in state.add(T0 + 3 * HOUR, 1))
    one = spike_alert(signal, "w1", "Taiwan Strait", T0 + 3 * HOUR + 5, 0.0, None)
    two = spike_alert(signal, "w1", "Taiwan Strait", T0 + 3 * HOUR + 900, 0.0, None)
    assert one.alert_id == two.alert_id and one.kind == "spike" and one.priority == "urgent"
    assert decode(Alert, encode(one)).signal == signal


def _alert(story: str, priority: str, t: float, sources: list[str]) -> Alert:
    return Alert(alert_id=f"al-{story}", kind="update", revision=1, watch_id="w1",
                 watch_name="Taiwan Strait", story_id=story, article_id="a", title=f"T {story}",
                 url=None, source=None, published_at=None, sources=sources, article_ids=[],
                 terms=[], matches=[], opened_at=t, updated_at=t, received_at=t,
                 priority=priority)


def test_a_digest_ranks_its_stories_and_closes_on_event_time() -> None:
    start, end = period_of(T0 + 10, "hourly")
    assert (start, end) == (T0, T0 + HOUR)
    digest = DigestState("hourly", start, end)
    digest.add(_alert("s1", "routine", T0 + 10, ["A", "B", "C"]))
    digest.add(_alert("s2", "flash", T0 + 20, ["A"]))
    digest.add(_alert("s1", "urgent", T0 + 30, ["D"]))
    assert [line.story_id for line in digest.ranked()] == ["s2", "s1"]
    assert digest.stories["s1"].alerts == 2 and digest.stories["s1"].sources == ["A", "B", "C", "D"]
    assert not digest.due(end, wall_time=end + 5, idle_since=end)
    assert digest.due(end + GRACE_SECONDS, wall_time=0.0, idle_since=0.0)
    # An idle partition closes it by the wall clock.
    assert digest.due(start, wall_time=end + IDLE_SECONDS + 61, idle_since=end)
    record = digest_alert(digest, "w1", "Taiwan Strait", now=end + 61)
    assert record.kind == "digest" and record.story_ids == ["s2", "s1"]
    assert record.priority == "flash" and record.digest_period == "hourly"
    back = decode(Alert, encode(record))
    assert back.digest_stories[0].story_id == "s2"
    assert DigestState.from_dict(orjson.loads(orjson.dumps(digest.to_dict()))) == digest
    # The same period gives the same id: a repeat after a crash is recognisable.
    assert digest_alert(digest, "w1", "x", now=0.0).alert_id == record.alert_id


def test_a_digest_keeps_at_most_its_cap_of_stories() -> None:
    digest = DigestState("daily", T0, T0 + 86400)
    for n in range(MAX_STORIES + 30):
        digest.add(_alert(f"s{n}", "flash" if n == 0 else "routine", T0 + n, ["A"]))
    assert len(digest.stories) == MAX_STORIES and "s0" in digest.stories
