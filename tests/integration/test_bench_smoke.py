"""`make bench` runs: the benchmark on a tiny input prints its table and writes JSON whose
numbers agree with each other and with what the run must have done.

No speed targets are asserted (a benchmark, not a timed test), but every number is checked
against what it is derived from or what bounds it, so a column that goes wrong fails here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams.broker import EmbeddedKafka
from streams.stages import PIPELINE
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
        # 200 articles on 2 cores: anything outside this range is a broken clock or count.
        assert 5 < run["articles_per_second"] < 50_000, (key, run)
        assert 50 < run["worker_cpu_us_per_article"] < 1_000_000, (key, run)
    # Both workers of the two-worker run took a share of news.raw's partitions.
    received = tp["pipeline_2"][0]["per_worker_clean_received"]
    assert len(received) == 2 and all(n > 0 for n in received), received
    summary = tp["summary"]
    rate = {key: tp[key][0]["articles_per_second"] for key in tp if key != "summary"}
    assert summary["pipeline_1_ratio"] == pytest.approx(rate["pipeline_1"] / rate["ceiling"],
                                                        abs=1e-3)
    assert summary["two_worker_speedup"] == pytest.approx(
        rate["pipeline_2"] / rate["pipeline_1"], abs=1e-3)
    assert summary["ceiling_two_worker_speedup"] == pytest.approx(
        rate["ceiling_2"] / rate["ceiling"], abs=1e-3)
    # The pipeline does the pass-through's hops and real work besides.
    assert summary["pipeline_1_ratio"] < 1.5, summary
    assert set(summary["stage_wall_us_per_article"]) == {stage.name for stage in PIPELINE}
    assert all(v > 0 for v in res["core_us_per_article"].values())
    # Some of the 200 articles hit the 100 corpus watches (0.08 alerts per article here), and
    # an article opens or updates at most one alert per watch.
    assert 0 < summary["alerts_per_article"] <= 100, summary

    lat = res["latency"]
    assert lat["articles"] == 60
    for key in ("story_publish_to_record", "alert_publish_to_record"):
        assert lat[key]["n"] > 0 and 0 < lat[key]["p50"] <= lat[key]["p99"] <= lat[key]["max"]
        assert lat[key]["max"] < 60, (key, lat[key])  # seconds; the run itself lasts 3 s
    assert lat["story_publish_to_record"]["n"] <= 60

    mem = res["memory"]
    assert [p["percent"] for p in mem["rss_mb"]] == list(range(10, 101, 10))
    assert all(50 < p["rss_mb"] <= mem["rss_mb_peak"] for p in mem["rss_mb"]), mem
    mid, end = mem["rss_mb"][4]["rss_mb"], mem["rss_mb"][-1]["rss_mb"]
    assert mem["last_half_change"] == pytest.approx((end - mid) / mid, abs=1e-4)

    # Each target's verdict is its value against its threshold.
    targets = res["targets"]
    assert targets["pipeline_vs_ceiling"] == {
        "value": summary["pipeline_1_ratio"], "target": ">= 0.50",
        "met": summary["pipeline_1_ratio"] >= 0.5}
    assert targets["two_workers_vs_one"] == {
        "value": summary["two_worker_speedup"], "target": ">= 1.6",
        "met": summary["two_worker_speedup"] >= 1.6}
    p99 = lat["alert_publish_to_record"]["p99"]
    assert targets["p99_publish_to_alert_s"] == {"value": p99, "target": "<= 0.100",
                                                 "met": p99 <= 0.1}
    change = mem["last_half_change"]
    assert targets["rss_last_half_change"] == {"value": change, "target": "within 0.10",
                                               "met": abs(change) <= 0.10}
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
    rows = [line.split() for line in result.stdout.splitlines()
            if line.split()[:1] in (["10"], ["300"])]
    assert "python µs" in result.stdout and [row[0] for row in rows] == ["10", "300"], rows
    columns = ("watches", "build_s", "cold_s", "median", "p99", "mean", "warm", "warm_mean",
               "python", "candidates", "hits_median", "hits_mean", "ever_hit", "evidence",
               "per_alert")
    for row in rows:
        assert len(row) == len(columns), row
        values = dict(zip(columns, (float(v.rstrip("%")) for v in row), strict=True))
        # Times per article in µs: a real cost, the median no more than the tail.
        assert 0 < values["median"] <= values["p99"], values
        assert 0 < values["mean"] <= values["p99"], values
        assert values["warm"] > 0 and values["python"] > 0, values
        # An article cannot hit more watches than there are, nor more than were candidates.
        assert values["hits_mean"] <= values["candidates"] <= values["watches"], values
        assert 0 <= values["ever_hit"] <= 100 and values["evidence"] > 0, values
    # The watches are phrases drawn from the corpus: at 300, some must hit held-out articles.
    assert float(rows[1][columns.index("ever_hit")].rstrip("%")) > 0, rows
