"""A real worker on the embedded Kafka broker, scraped by a real Prometheus.

One worker for the module: articles go through it, then
- the dashboard's and the rules' metric names are checked against its /metrics page;
- Prometheus (1 s scrape and evaluation, the project's rules) must hold the same values,
  answer every dashboard query with data, evaluate every rule without error, and, once the
  worker is stopped, raise the worker-down alert.
Every wait is bounded.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.broker import EmbeddedKafka
from tests.conftest import SEED_000, SEED_003
from tests.integration.harness import Pipeline
from tests.ops.prom import (
    METRIC_NAME,
    PROMETHEUS_CONFIG,
    RULES,
    Prometheus,
    alert_rules,
    dashboards,
    exported_names,
    exported_samples,
    grafana_to_promql,
    load_yaml,
    panel_exprs,
    poll,
)

MALFORMED = b'{"title": "cut off mid-record", "text": "never clos'


@dataclass
class Live:
    pipeline: Pipeline
    port: int
    sent: int
    opened: int
    updated: int
    exposition: str  # the worker's /metrics once every article went through


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return str(resp.read().decode())


def _scrape_with(port: int, needle: str) -> str | None:
    text = _scrape(port)
    return text if needle in text else None


@pytest.fixture(scope="module")
def live(kafka: EmbeddedKafka, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("ops-live")
    watches = tmp / "watches.txt"
    watches.write_text("Taiwan Strait: Taiwan Strait\n"
                       "crisis communications: crisis communications\n")
    pipeline = Pipeline(kafka, tmp)
    try:
        port = pipeline.start_worker(WIREWATCH_WATCHES_FILE=str(watches))
        for body in (SEED_000.read_bytes(), SEED_003.read_bytes(), MALFORMED):
            pipeline.send("raw", body)
        alerts = pipeline.wait_for("alerts", lambda r: r if len(r) >= 4 else [])
        pipeline.wait_metric("wirewatch_articles_total", {"stage": "alert", "outcome": "emitted"}, 2)
        pipeline.wait_metric("wirewatch_dead_letters_total",
                             {"stage": "clean", "reason": "malformed_json"}, 1)
        # The lag sampler runs every 5 s; wait for its first values so the gauges have series.
        exposition = poll(lambda: _scrape_with(port, "wirewatch_consumer_lag_messages{"),
                          30, "the first consumer lag sample")
        yield Live(pipeline, port, sent=3,
                   opened=sum(a["kind"] == "opened" for a in alerts),
                   updated=sum(a["kind"] == "update" for a in alerts),
                   exposition=exposition)
    finally:
        pipeline.stop_workers()


def _names_in(exprs: list[tuple[str, str]]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for where, expr in exprs:
        for name in METRIC_NAME.findall(expr):
            found.setdefault(name, set()).add(where)
    return found


def _families(names: set[str]) -> set[str]:
    suffixes = ("_bucket", "_sum", "_count", "_total", "_info")
    return {next((n.removesuffix(s) for s in suffixes if n.endswith(s)), n) for n in names}


def test_dashboard_and_rules_name_only_metrics_the_worker_exports(live: Live) -> None:
    exported = {n for n in exported_names(live.exposition) if n.startswith("wirewatch_")}
    assert "wirewatch_stage_processing_seconds_bucket" in exported  # parsed with suffixes
    assert "wirewatch_articles_total" in exported

    dashboard_exprs = [(f"{file}: {title}", expr) for file, board in dashboards().items()
                       for title, expr in panel_exprs(board)]
    rule_exprs = [(f"rule {rule['alert']}", rule["expr"]) for rule in alert_rules()]
    for what, exprs in (("dashboard", dashboard_exprs), ("rules.yml", rule_exprs)):
        used = _names_in(exprs)
        assert used, f"{what} names no wirewatch metric"
        unknown = {name: sorted(where) for name, where in used.items() if name not in exported}
        assert unknown == {}, f"{what} queries metrics the worker does not export"

    # And the other way round: every metric family the worker exports has a panel.
    shown = _families(set(_names_in(dashboard_exprs)))
    assert _families(exported) - shown == set(), "metrics no dashboard panel shows"


def _test_config(tmp: Path, worker_port: int) -> Path:
    """The compose Prometheus config, pointed at the test worker, scraping every second,
    with the project's rules plus a copy of the worker-down rule whose `for` is 1 s."""
    config: dict[str, Any] = load_yaml(PROMETHEUS_CONFIG)
    config["global"] = {"scrape_interval": "1s", "scrape_timeout": "1s",
                        "evaluation_interval": "1s"}
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "wirewatch")
    job.pop("dns_sd_configs")
    job["static_configs"] = [{"targets": [f"127.0.0.1:{worker_port}"]}]
    down = next(r for r in alert_rules() if r["alert"] == "WirewatchWorkerDown")
    fast = {**down, "for": "1s", "labels": {**down["labels"], "test_copy": "fast"}}
    (tmp / "fast_rules.yml").write_text(yaml.safe_dump(
        {"groups": [{"name": "wirewatch-test", "rules": [fast]}]}))
    config["rule_files"] = [str(RULES), str(tmp / "fast_rules.yml")]
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_prometheus_scrapes_the_worker_and_raises_worker_down(live: Live, tmp_path: Path) -> None:
    instance = f"127.0.0.1:{live.port}"
    with Prometheus(_test_config(tmp_path, live.port), tmp_path) as prom:
        poll(lambda: prom.value(f'up{{job="wirewatch", instance="{instance}"}}') == 1 or None,
             30, "the worker's first scrape")

        # The values the worker exported are the values Prometheus holds: counters and
        # histogram counts are final once the articles went through.
        received = 'wirewatch_articles_total{stage="clean", outcome="received"}'
        assert prom.value(received) == live.sent
        assert prom.value('wirewatch_articles_total{stage="clean", outcome="dead_lettered"}') == 1
        assert prom.value('wirewatch_dead_letters_total{stage="clean", reason="malformed_json"}') == 1
        assert prom.value('wirewatch_alerts_total{kind="opened"}') == live.opened == 2
        assert prom.value('wirewatch_alerts_total{kind="updated"}') == live.updated == 2
        assert prom.value("wirewatch_end_to_end_seconds_count") == live.opened + live.updated
        assert prom.value('wirewatch_build_info{version!=""}') == 1
        compared = 0
        for (name, labels), value in exported_samples(live.exposition).items():
            if name.endswith(("_total", "_count", "_bucket")) and name.startswith("wirewatch_"):
                selector = ", ".join(f'{k}="{v}"' for k, v in labels)
                assert prom.value(f"{name}{{{selector}}}") == value, (name, labels)
                compared += 1
        assert compared > 100
        assert prom.value("sum(wirewatch_consumer_lag_messages)") is not None

        # Every dashboard query answers with data (a wrong label would answer nothing).
        for board in dashboards().values():
            for title, expr in panel_exprs(board):
                promql = grafana_to_promql(expr, "10s")

                def answer(q: str = promql) -> list[dict[str, Any]]:
                    return prom.query(q)

                poll(answer, 15, f"panel {title!r}: {promql}")

        # Every rule, production and test copy, is loaded and evaluates without error.
        names = {r["alert"] for r in alert_rules()}
        def evaluated() -> list[dict[str, Any]] | None:
            rules = prom.rules()  # not yet evaluated: lastEvaluation is 0001-01-01
            return rules if all(not r["lastEvaluation"].startswith("0001") for r in rules) else None

        rules = poll(evaluated, 15, "every rule to be evaluated")
        assert sorted(r["name"] for r in rules) == sorted([*names, "WirewatchWorkerDown"])
        assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []
        assert [a for a in prom.alerts() if a["state"] == "firing"] == []

        # Stop the worker: the fast copy fires, the production rule (for: 1m) is pending.
        live.pipeline.stop_workers()
        poll(lambda: prom.value(f'up{{instance="{instance}"}}') == 0 or None, 30,
             "a failed scrape")

        def worker_down() -> dict[str, str] | None:
            states = {a["labels"].get("test_copy", "production"): a["state"]
                      for a in prom.alerts() if a["labels"]["alertname"] == "WirewatchWorkerDown"
                      and a["labels"]["instance"] == instance}
            return states if states == {"fast": "firing", "production": "pending"} else None

        poll(worker_down, 20, "WirewatchWorkerDown firing (test copy) and pending (production)")
        alert = next(a for a in prom.alerts() if a["labels"].get("test_copy") == "fast")
        assert alert["labels"]["severity"] == "critical"
        assert instance in alert["annotations"]["summary"]
