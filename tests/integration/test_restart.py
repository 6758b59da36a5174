"""State survives a worker restart through its changelog topics."""

from __future__ import annotations

from typing import Any

from agents.watch.store import put_watch
from tests.conftest import SEED_000, SEED_003
from tests.integration.harness import Pipeline
from tests.integration.test_pipeline import near_copy_of_seed_000


def _at_least(n: int) -> Any:
    return lambda records: records if len(records) >= n else None


def test_dedup_and_alert_state_survive_a_restart(pipeline: Pipeline) -> None:
    put_watch(pipeline.settings, "Taiwan Strait")
    pipeline.start_worker()
    pipeline.send("raw", SEED_000.read_bytes())
    (original,) = pipeline.wait_for("stories", _at_least(1))
    (opened,) = pipeline.wait_for("alerts", _at_least(1))
    pipeline.stop_workers()

    port = pipeline.start_worker()  # a new process: every in-memory index is gone
    pipeline.send("raw", near_copy_of_seed_000(), SEED_003.read_bytes())
    stories = pipeline.wait_for("stories", _at_least(3))
    copy = next(s for s in stories if s["id"] not in (original["id"],)
                and "Shangri-La" in s["text"])
    assert copy["duplicate_of"] == original["id"], "near duplicate of a pre-restart article"
    assert {s["story_id"] for s in stories} == {original["story_id"]}

    alerts = pipeline.wait_for("alerts", _at_least(3))
    assert [a["kind"] for a in alerts] == ["opened", "update", "update"]
    assert {a["alert_id"] for a in alerts} == {opened["alert_id"]}
    assert pipeline.metric("wirewatch_dedup_window_articles", port=port) == 3
