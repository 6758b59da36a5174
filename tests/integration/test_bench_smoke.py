"""`make bench` runs: the benchmark on a tiny input prints its table and writes sane JSON.

No targets are asserted (a benchmark, not a timed test): only that every part ran.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams.broker import EmbeddedKafka
from tests.conftest import REPO


@pytest.mark.timeout(290)
def test_bench_runs_on_a_small_input(kafka: EmbeddedKafka, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "pipeline_bench.py"), "--broker", kafka.url,
         "--articles", "200", "--warmup", "20", "--repeats", "1", "--watches", "100",
         "--latency-seconds", "3", "--latency-rate", "20", "--memory-articles", "200",
         "--out", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=280, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    table = result.stdout
    for line in ("ceiling (pass-through)", "ceiling, 2 workers", "pipeline, 1 worker",
                 "pipeline, 2 workers",
                 "latency at 20.0 articles/s", "alert_publish_to_record", "memory: 200 articles",
                 "targets:", str(out)):
        assert line in table, table

    res = json.loads(out.read_text())
    assert res["table"] in table
    tp = res["throughput"]
    for key, workers in (("ceiling", 1), ("ceiling_2", 2), ("pipeline_1", 1), ("pipeline_2", 2)):
        (run,) = tp[key]
        assert run["articles"] == 200 and run["workers"] == workers
        assert run["articles_per_second"] > 0 and run["worker_cpu_us_per_article"] > 0
    assert tp["pipeline_2"][0]["per_worker_clean_received"] != [0, 0]
    summary = tp["summary"]
    assert summary["pipeline_1_ratio"] > 0 and summary["two_worker_speedup"] > 0
    assert summary["ceiling_two_worker_speedup"] > 0
    assert set(summary["stage_wall_us_per_article"]) == {"clean", "tag", "dedup", "alert"}
    assert all(v > 0 for v in res["core_us_per_article"].values())
    assert summary["alerts_per_article"] > 0

    lat = res["latency"]
    assert lat["articles"] == 60
    for key in ("story_publish_to_record", "alert_publish_to_record"):
        assert lat[key]["n"] > 0 and 0 < lat[key]["p50"] <= lat[key]["p99"] <= lat[key]["max"]
    assert lat["story_publish_to_record"]["n"] <= 60

    mem = res["memory"]
    assert [p["percent"] for p in mem["rss_mb"]] == list(range(10, 101, 10))
    assert all(p["rss_mb"] > 50 for p in mem["rss_mb"])
    assert mem["last_half_change"] is not None

    assert set(res["targets"]) == {"pipeline_vs_ceiling", "p99_publish_to_alert_s",
                                   "two_workers_vs_one", "rss_last_half_change"}
    assert all(isinstance(t["met"], bool) for t in res["targets"].values())
    assert res["config"]["latency_settings"]["producer_linger_ms"] == 2


@pytest.mark.timeout(120)
def test_watch_bench_runs_on_a_small_input() -> None:
    # Compiled and Python matching, build and evidence columns, on 30 BBC articles.
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "watch_bench.py"), "--sizes", "10", "300",
         "--repeats", "1", "--articles", "30"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=110, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    header, *rows = [line.split() for line in result.stdout.splitlines()
                     if line.split()[:1] in (["watches"], ["10"], ["300"])]
    assert "python" in header and [row[0] for row in rows] == ["10", "300"]
    assert all(float(value.rstrip("%")) >= 0 for row in rows for value in row), rows
