"""Signals on real workers (issue 23): one surge alert however the worker restarts, spikes
and digests from the signals stage."""

from __future__ import annotations

import collections
import time
from typing import Any

import orjson

from agents.watch.store import put_watch
from tests.conftest import SEED_000
from tests.integration.harness import Pipeline

TITLE, _, BODY = SEED_000.read_text(encoding="utf-8").partition("\n")


def outlet_copy(n: int, *, story: str = "") -> bytes:
    """Seed 000 as outlet ``n`` runs it: the same story, a line of its own (so no exact copy)."""
    return orjson.dumps({
        "id": f"copy-{story}{n}", "title": TITLE, "source": f"Outlet {n}",
        "text": BODY.split("Read Next:")[0] + f"\nOutlet {n} contributed reporting from desk "
                                               f"number {n * 7919}.\n",
    })


def _kinds(alerts: list[dict[str, Any]]) -> list[str]:
    return [a["kind"] for a in alerts]


def _wait_alerts(pipeline: Pipeline, count: int, timeout: float = 60) -> list[dict[str, Any]]:
    return pipeline.wait_for("alerts", lambda r: r if len(r) >= count else None, timeout=timeout)


def test_one_surge_alert_across_worker_kills_in_the_middle_of_the_surge(
        pipeline: Pipeline) -> None:
    put_watch(pipeline.settings, "Taiwan Strait")
    pipeline.start_worker()
    pipeline.send("raw", outlet_copy(1), outlet_copy(2))
    before = _wait_alerts(pipeline, 2)
    assert _kinds(before) == ["opened", "update"]
    pipeline.stop_workers(kill=True)  # state only in the changelogs now

    pipeline.start_worker()
    pipeline.send("raw", outlet_copy(3))  # the third new source in 15 minutes: a surge
    surged = _wait_alerts(pipeline, 3)
    assert surged[-1]["kind"] == "surge", _kinds(surged)
    assert surged[-1]["priority"] == "flash" and surged[-1]["signal"]["value"] == 3
    pipeline.send("raw", outlet_copy(4))
    _wait_alerts(pipeline, 4)
    pipeline.stop_workers(kill=True)  # in the middle of the surge

    pipeline.start_worker()
    pipeline.send("raw", outlet_copy(5), outlet_copy(6), outlet_copy(3))  # and a redelivery
    alerts = _wait_alerts(pipeline, 6)
    time.sleep(2)  # anything more would come now
    alerts = [a for a in pipeline.json_records("alerts") if a["kind"] != "spike"]
    assert _kinds(alerts).count("surge") == 1, _kinds(alerts)
    assert len(alerts) == 6, _kinds(alerts)
    revisions = [(a["alert_id"], a["revision"]) for a in alerts]
    assert len(set(revisions)) == len(revisions) and len({a["alert_id"] for a in alerts}) == 1
    assert all(a["priority"] == "flash" for a in alerts[2:]), [a["priority"] for a in alerts]
    story = pipeline.json_records("stories")[-1]["story"]
    assert story["new_sources_15m"] == 6 and story["sources_1h"] == 6


def test_spikes_and_digests_come_from_the_signals_stage(pipeline: Pipeline) -> None:
    put_watch(pipeline.settings, "Taiwan Strait", digest="hourly")
    # News of two hours ago (record time): its hour is over, and the partition, idle for 3 s
    # (shortened here), closes the digest by the wall clock.
    pipeline.start_worker(WIREWATCH_SIGNALS_IDLE_SECONDS="3")
    pipeline.send("raw", *(outlet_copy(n, story="d") for n in range(1, 4)),
                  timestamp=time.time() - 7200)
    alerts = _wait_alerts(pipeline, 4, timeout=90)
    by_kind = collections.Counter(_kinds(pipeline.json_records("alerts")))
    assert by_kind["opened"] == 1 and by_kind["digest"] <= 1
    digests = pipeline.wait_for(
        "alerts", lambda r: [a for a in r if a["kind"] == "digest"] or None, timeout=60)
    (digest,) = digests
    assert digest["digest_period"] == "hourly" and len(digest["digest_stories"]) == 1
    line = digest["digest_stories"][0]
    assert line["alerts"] == 3 and line["priority"] == "flash"
    assert sorted(line["sources"]) == ["Outlet 1", "Outlet 2", "Outlet 3"]  # any order
    assert digest["alert_id"] not in {a["alert_id"] for a in alerts if a["kind"] != "digest"}


def test_an_entity_that_starts_trending_is_published_and_alerts_its_watch(
        pipeline: Pipeline) -> None:
    put_watch(pipeline.settings, "Austin trends", 'entity:"Lloyd Austin"', trend_alerts=True)
    put_watch(pipeline.settings, "Austin mentions", 'entity:"Lloyd Austin"')  # no trend alerts
    pipeline.start_worker()
    now = time.time()
    # Three hours of history without him, then six outlets name him within the hour.
    for hours_ago in (3, 2):
        pipeline.send("raw", orjson.dumps({
            "id": f"weather-{hours_ago}", "title": "Mild weather in Paris",
            "text": "The weather in Paris stayed mild on Tuesday, forecasters in France said."}),
            timestamp=now - hours_ago * 3600)
    pipeline.send("raw", *(outlet_copy(n, story="t") for n in range(1, 7)), timestamp=now - 900)
    # All eight counted before event time moves on (raw partitions may reorder them).
    pipeline.wait_for("tagged", lambda r: r if len(r) >= 8 else None, timeout=60)
    # A later article moves event time past the next five-minute window: the trends go out.
    pipeline.send("raw", orjson.dumps({
        "id": "weather-now", "title": "Rain in Paris",
        "text": "Rain fell over Paris on Wednesday, forecasters in France said."}),
        timestamp=now)
    trends = pipeline.wait_for("trends", lambda r: r or None, timeout=90)
    austin = [t for t in trends if t["key"] == "person:lloyd austin"]
    assert austin, trends
    assert austin[0]["mentions_1h"] >= 6 and austin[0]["baseline_per_hour"] == 0
    assert austin[0]["score"] >= 3 and austin[0]["rank"] >= 1
    alerts = pipeline.wait_for(
        "alerts", lambda r: [a for a in r if a["kind"] == "trend"] or None, timeout=30)
    assert [a["watch_name"] for a in alerts] == ["Austin trends"]
    assert alerts[0]["priority"] == "urgent" and alerts[0]["signal"]["name"] == "trend"
