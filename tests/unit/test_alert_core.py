"""Alert state: a redelivered article never makes a new revision, however long its story."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

from agents.alert.core import AlertState, decide
from streams.records import Article, WatchHit

HIT = WatchHit(watch_id="w1", watch_name="Taiwan Strait", terms=["Taiwan Strait"])


def _article(n: int) -> Article:
    return Article(id=f"art-{n}", title="T", text="B", source=f"S{n % 70}", story_id="story-1",
                   received_at=100.0)


def _feed(count: int) -> AlertState:
    state: AlertState | None = None
    for n in range(count):
        result = decide(state, _article(n), HIT, now=float(n))
        assert result is not None and result[1].revision == n + 1
        state = result[0]
    assert state is not None
    return state


def test_a_story_of_1000_articles_redelivered_makes_no_revision() -> None:
    state = _feed(1_000)
    assert state.revision == 1_000
    order = list(range(1_000))
    for redelivery in (order, random.Random(7).sample(order, len(order))):
        for n in redelivery:
            assert decide(state, _article(n), HIT, now=5_000.0) is None, n
    assert state.revision == 1_000


def test_state_round_trips_through_the_agent_serialisation() -> None:
    from agents.alert.agent import _dump, _load

    state = _feed(1_000)
    loaded = _load(_dump({"w1": state}, 3, 9.5))["w1"]
    assert loaded == state and loaded.seen == state.seen
    assert all(decide(loaded, _article(n), HIT, now=1.0) is None for n in range(1_000))
    assert decide(loaded, _article(1_000), HIT, now=1.0) is not None


def test_a_state_stored_before_the_seen_record_still_loads() -> None:
    import orjson

    from agents.alert.agent import _dump, _load

    stored = _feed(3)
    old = {field: getattr(stored, field) for field in AlertState.__slots__ if field != "seen"}
    loaded = _load(orjson.dumps({"p": 0, "t": 1.0, "states": {"w1": old}}))["w1"]
    assert loaded == stored  # ``seen`` derived from article_ids
    assert all(decide(loaded, _article(n), HIT, now=1.0) is None for n in range(3))
    result = decide(loaded, _article(3), HIT, now=1.0)
    assert result is not None and result[1].revision == 4
    assert _load(_dump({"w1": result[0]}, 0, 1.0))["w1"] == result[0]


def test_a_full_record_ends_the_alert_and_its_size_is_bounded() -> None:
    import orjson

    from agents.alert.core import MAX_SEEN_ARTICLES, MAX_TRACKED_ARTICLES

    state = _feed(MAX_SEEN_ARTICLES)
    assert state.revision == MAX_SEEN_ARTICLES
    for n in range(MAX_SEEN_ARTICLES + 100):  # redelivered, then new: neither is taken
        assert decide(state, _article(n), HIT, now=1.0) is None, n
    assert len(state.article_ids) == MAX_TRACKED_ARTICLES
    # 8 bytes per article seen (32 KB at the cap), on top of the capped lists (~4 KB here).
    assert len(state.seen) == 8 * MAX_SEEN_ARTICLES
    assert len(orjson.dumps(state)) < 8 * MAX_SEEN_ARTICLES + 8 * 1024


def test_tokens_only_match_at_token_boundaries() -> None:
    from agents.alert.core import _has, _token

    a, b = _token("art-1"), _token("art-2")
    assert len(a) == len(b) == 8 and a != b
    assert _has(a + b, a) and _has(a + b, b) and not _has("", a)
    across = (a + b)[4:12]  # in the record, but astride two tokens: not a seen article
    assert not _has(a + b, across) and _has(a + b + across, across)


def test_a_failed_send_keeps_what_went_out_before_it() -> None:
    """The agent's order: decide, send, record, one watch at a time. When the second
    watch's send fails, the first watch's new state is kept, so the redelivered article
    sends only the second watch's alert: each (alert_id, revision) goes out once."""
    import asyncio

    from agents.alert.agent import alert_on
    from agents.alert.ratelimit import RateLimiter
    from agents.watch.definitions import make_watch
    from agents.watch.registry import WatchRegistry
    from streams.records import Alert, Watch

    first, second = make_watch("Taiwan Strait"), make_watch("crisis communications")
    registry = WatchRegistry([first, second])
    article = Article(id="a1", title="Crisis communications in the Taiwan Strait",
                      text="Navies agreed crisis communications for the Taiwan Strait.",
                      story_id="story-1", received_at=1.0,
                      watch_hits=[WatchHit(w.id, w.name, [w.name]) for w in (first, second)])
    sent: list[tuple[str, int]] = []

    def sender(fail_on: str | None) -> Callable[[Watch, Alert], Awaitable[None]]:
        async def send(watch: Watch, alert: Alert) -> None:
            if watch.id == fail_on:
                raise RuntimeError("broker refused the record")
            sent.append((alert.alert_id, alert.revision))
        return send

    async def deliver(states: dict[str, AlertState], fail_on: str | None) -> int:
        return await alert_on(article, states, 10.0, watches=registry,
                              limits=RateLimiter(window=300, default_limit=100),
                              send=sender(fail_on))

    states: dict[str, AlertState] = {}
    try:
        asyncio.run(deliver(states, fail_on=second.id))
    except RuntimeError:
        pass
    assert set(states) == {first.id}  # what went out is recorded; the failed one is not
    assert asyncio.run(deliver(states, fail_on=None)) == 1  # the redelivery
    assert asyncio.run(deliver(states, fail_on=None)) == 0  # and once more: nothing
    assert len(sent) == len(set(sent)) == 2, sent
    assert {revision for _, revision in sent} == {1}


def test_the_alerts_of_one_story_take_a_bounded_number_of_articles_between_them() -> None:
    from agents.alert.core import MAX_SEEN_PER_STORY, TOKEN_CHARS, story_is_full

    # 300 watches on one story, their records together at the story's budget.
    per_watch = MAX_SEEN_PER_STORY // 300 + 1
    states = [AlertState(alert_id=f"al{n}", watch_id=f"w{n}", story_id="story-1", revision=1,
                         opened_at=0.0, updated_at=0.0, seen="x" * (per_watch * TOKEN_CHARS))
              for n in range(300)]
    assert story_is_full(states) and not story_is_full(states[:-10])
    new = _article(5_000)
    assert decide(states[0], new, HIT, now=1.0, story_full=True) is None
    assert decide(None, new, HIT, now=1.0, story_full=True) is None  # not even a new watch
    assert decide(states[0], new, HIT, now=1.0) is not None


def test_an_alert_sent_before_a_crash_is_recorded_not_sent_again() -> None:
    """A worker died after sending an alert and before its state reached the changelog; the
    next worker reads it back from news.alerts (``already_sent``) and records it silently."""
    import asyncio

    from agents.alert.agent import alert_on
    from agents.alert.core import alert_id_for
    from agents.alert.ratelimit import RateLimiter
    from agents.watch.definitions import make_watch
    from agents.watch.registry import WatchRegistry
    from streams.records import Alert, Watch

    watch = make_watch("Taiwan Strait")
    article = Article(id="a1", title="Patrols in the Taiwan Strait", text="The Taiwan Strait.",
                      story_id="story-1", received_at=1.0,
                      watch_hits=[WatchHit(watch.id, watch.name, [watch.name])])
    sent: list[Alert] = []

    async def send(_watch: Watch, alert: Alert) -> None:
        sent.append(alert)

    async def deliver(states: dict[str, AlertState], already: set[tuple[str, str]]) -> int:
        return await alert_on(article, states, 10.0, watches=WatchRegistry([watch]),
                              limits=RateLimiter(window=300, default_limit=100), send=send,
                              already_sent=already)

    states: dict[str, AlertState] = {}
    went_out = {(alert_id_for(watch.id, "story-1"), "a1")}
    assert asyncio.run(deliver(states, went_out)) == 1
    assert sent == [] and states[watch.id].revision == 1  # recorded, not sent
    assert asyncio.run(deliver(states, set())) == 0  # and now a plain repeat

    fresh: dict[str, AlertState] = {}
    assert asyncio.run(deliver(fresh, set())) == 1 and len(sent) == 1  # can fail: it sends
