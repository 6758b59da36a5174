"""What ingest remembers per source (agents/ingest/state.py): bounded seen ids, backoff,
health transitions, the wire format."""

from __future__ import annotations

import pytest

from agents.ingest.state import SourceState, backoff_delay, health
from streams.errors import BadRecord

HOUR = 3600.0


def test_seen_ids_keep_what_the_feed_still_lists() -> None:
    state = SourceState("https://a.example/feed")
    state.mark_seen([f"old{i}" for i in range(5)])
    state.mark_seen(["a", "b", "c"])
    # The feed now lists a, b, c and one old item; the cap keeps 4.
    forgotten = state.refresh(["c", "b", "a", "old0"], cap=4)
    assert forgotten == 4
    assert state.seen == ["c", "b", "a", "old0"]
    assert all(state.has_seen(i) for i in ("a", "b", "c", "old0"))
    assert not state.has_seen("old1")


def test_a_cap_above_the_feed_size_never_forgets_a_listed_item() -> None:
    state = SourceState("u")
    listed = [f"i{n}" for n in range(50)]
    for round_ in range(40):  # each round the feed drops 5 items and lists 5 new ones
        listed = [f"r{round_}-{n}" for n in range(5)] + listed[:-5]
        state.mark_seen([i for i in listed if not state.has_seen(i)])
        state.refresh(listed, cap=60)
        assert all(state.has_seen(i) for i in listed)
        assert len(state.seen) <= 60


def test_mark_seen_is_idempotent_and_clears_page_attempts() -> None:
    state = SourceState("u", page_attempts={"a": 2})
    state.mark_seen(["a", "a", "b"])
    assert state.seen == ["a", "b"] and state.page_attempts == {}


def test_backoff_grows_is_capped_and_honours_retry_after() -> None:
    delays = [backoff_delay(n, 600, 6 * HOUR, jitter=0) for n in range(1, 8)]
    assert delays == [600, 1200, 2400, 4800, 9600, 19200, 21600]
    assert backoff_delay(100, 600, 6 * HOUR, jitter=0) == 6 * HOUR
    assert backoff_delay(1, 600, 6 * HOUR, 3 * HOUR, jitter=0) == 3 * HOUR
    assert backoff_delay(1, 600, 6 * HOUR, 10 * 86_400, jitter=0) == 86_400
    jittered = {backoff_delay(1, 600, 6 * HOUR) for _ in range(50)}
    assert min(jittered) >= 540 and max(jittered) <= 660 and len(jittered) > 1


def test_health_changes_are_reported_once_each() -> None:
    state = SourceState("u")
    changes = []
    now = 1_000_000.0
    kwargs = {"interval": 600.0, "max_backoff": 6 * HOUR, "failing_after": 24 * HOUR}
    for step in range(60):  # an hour apart: 60 failures over 59 hours
        reason = "server_error" if step < 30 else "timeout"
        changes.append(state.record_failure(now + step * HOUR, reason, "HTTP 503", **kwargs))
    kinds = [c.kind for c in changes if c is not None]
    assert kinds == ["failing", "failing_long", "reason_changed"]
    assert health(state, now + 59 * HOUR, 24 * HOUR) == "failing"
    assert health(state, now + 10, 24 * HOUR) == "backing_off"
    recovered = state.record_success(now + 60 * HOUR, 600)
    assert recovered is not None and recovered.kind == "recovered" and recovered.failures == 60
    assert state.failures == 0 and state.reason is None and not state.reported
    assert health(state, now + 60 * HOUR, 24 * HOUR) == "ok"
    assert state.record_success(now + 61 * HOUR, 600) is None
    assert abs(state.next_poll - (now + 61 * HOUR + 600)) <= 30


def test_wire_format_round_trips_and_checks() -> None:
    state = SourceState("https://a.example/", etag='"x"', seen=["a", "b"], failures=2,
                        page_attempts={"c": 1}, children={"https://a.example/s.xml": ["e", None]})
    again = SourceState.from_json(state.to_json())
    assert again == state and again.has_seen("a")
    assert b"_seen_set" not in state.to_json()
    assert SourceState.from_json(b'{"url": "u", "future_field": 1}').url == "u"
    for bad in (b"nope", b"[]", b'{"seen": []}', b'{"url": "u", "seen": [1]}',
                b'{"url": "u", "seen": "abc"}'):
        with pytest.raises(BadRecord):
            SourceState.from_json(bad)
