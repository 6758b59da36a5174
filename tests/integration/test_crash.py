"""A worker killed with -9 mid-stream: nothing is lost, no alert is opened twice."""

from __future__ import annotations

import gzip
from collections import defaultdict
from typing import Any

import orjson

from agents.watch.store import put_watch
from streams.text import normalize
from tests.conftest import DATA
from tests.integration.harness import Pipeline

ARTICLES = 240


def _bbc_politics(n: int) -> list[bytes]:
    rows, bodies = [], set()
    with gzip.open(DATA / "bbc_news_2225.jsonl.gz", "rb") as handle:
        for line in handle:
            row = orjson.loads(line)
            body = normalize(row["text"])
            # Distinct bodies only: a repeated body is (rightly) dropped as an exact copy.
            if row["category"] == "politics" and body not in bodies:
                bodies.add(body)
                rows.append(orjson.dumps({k: row[k] for k in ("id", "source", "title", "text")}))
            if len(rows) == n:
                break
    return rows


def test_kill_9_mid_stream_loses_nothing_and_opens_no_alert_twice(pipeline: Pipeline) -> None:
    put_watch(pipeline.settings, "Labour")
    put_watch(pipeline.settings, "Tories", '"Tory" OR "Tories" OR "Conservatives"')
    # No rate limit here: every revision must reach the topic for the gap check below.
    crash_env = {"WIREWATCH_SESSION_TIMEOUT_SECONDS": "6", "WIREWATCH_ALERT_RATE_LIMIT": "100000"}
    pipeline.start_worker(**crash_env)
    articles = _bbc_politics(ARTICLES)
    ids = {orjson.loads(a)["id"] for a in articles}
    pipeline.send("raw", *articles)
    pipeline.wait_for("alerts", lambda r: len(r) >= 3)
    pipeline.stop_workers(kill=True)  # mid-stream: uncommitted offsets will be redelivered

    pipeline.start_worker(**crash_env)

    def all_processed(records: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        return records if {r["id"] for r in records} >= ids else None

    stories = pipeline.wait_for("stories", all_processed, timeout=180)
    assert {s["id"] for s in stories} == ids, "every article reaches news.stories"

    alerts = pipeline.json_records("alerts")
    revisions: dict[str, list[int]] = defaultdict(list)
    opened: dict[str, int] = defaultdict(int)
    for alert in alerts:
        revisions[alert["alert_id"]].append(alert["revision"])
        opened[alert["alert_id"]] += alert["kind"] == "opened"
    assert alerts, "the watches hit BBC politics articles"
    for alert_id, seen in revisions.items():
        # A redelivered record may repeat an (alert_id, revision) pair, never fork it.
        assert sorted(set(seen)) == list(range(1, max(seen) + 1)), alert_id
    assert all(count >= 1 for count in opened.values())
    distinct_opened = {a["alert_id"] for a in alerts if a["kind"] == "opened"}
    assert len(distinct_opened) == len(revisions), "one alert per watch and story"
