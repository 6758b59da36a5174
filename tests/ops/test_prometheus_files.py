"""ops/prometheus and ops/grafana as files: promtool's checks and unit tests, and what the
rules and the dashboard must look like. No worker runs here (see test_live.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from streams.stages import STAGES
from streams.topics import TOPICS
from tests.ops.prom import (
    DASHBOARD_PROVIDERS,
    DATASOURCES,
    PROMETHEUS_CONFIG,
    RULES,
    RULES_TEST,
    alert_rules,
    dashboards,
    grafana_to_promql,
    load_yaml,
    panel_exprs,
    panels,
    promtool,
)

# Labels a rule may add or keep: each takes a handful of values (never an id).
BOUNDED_LABELS = {"severity", "job", "instance", "stage", "topic", "outcome", "kind", "reason"}
REQUIRED_ALERTS = {
    "WirewatchWorkerDown", "WirewatchStageStalled", "WirewatchStageStarved",
    "WirewatchPartitionStalled",
    "WirewatchConsumerLagGrowing", "WirewatchDeadLetterRateHigh",
    "WirewatchEndToEndLatencyHigh", "WirewatchWebhookDeliveriesFailing",
}


def _ok(result: Any) -> str:
    return f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


def _duration_seconds(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    parts = re.findall(r"(\d+)(ms|s|m|h|d)", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"bad duration {text!r}"
    return sum(int(n) * units[u] for n, u in parts)


def test_promtool_check_config_accepts_the_compose_config() -> None:
    result = promtool("check", "config", PROMETHEUS_CONFIG.name)
    assert result.returncode == 0, _ok(result)
    assert "SUCCESS" in result.stdout


def test_promtool_check_rules_accepts_the_rules() -> None:
    result = promtool("check", "rules", RULES.name)
    assert result.returncode == 0, _ok(result)
    assert f"{len(alert_rules())} rules found" in result.stdout


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    result = promtool("test", "rules", RULES_TEST.name)
    assert result.returncode == 0, _ok(result)
    assert "SUCCESS" in result.stdout, _ok(result)
    assert "FAILED" not in result.stdout + result.stderr, _ok(result)


def test_promtool_test_rules_fails_on_a_broken_rule(tmp_path: Path) -> None:
    """The unit tests have teeth: a rule whose threshold drifts makes them fail."""
    rules = RULES.read_text().replace("> 0.05", "> 0.5")
    assert rules != RULES.read_text()
    (tmp_path / RULES.name).write_text(rules)
    (tmp_path / RULES_TEST.name).write_text(RULES_TEST.read_text())
    result = promtool("test", "rules", RULES_TEST.name, cwd=tmp_path)
    assert result.returncode != 0, _ok(result)
    assert "WirewatchDeadLetterRateHigh" in result.stdout + result.stderr, _ok(result)


def test_every_alert_is_documented_bounded_and_not_trigger_happy() -> None:
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    assert set(names) >= REQUIRED_ALERTS
    for rule in rules:
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert set(rule["labels"]) <= BOUNDED_LABELS, name
        annotations = rule["annotations"]
        assert annotations.get("summary") and annotations.get("description"), name
        # A production rule waits before it pages: no flapping on one bad scrape.
        assert _duration_seconds(rule["for"]) >= 60, name
        # Aggregations keep only bounded labels.
        for clause in re.findall(r"\b(?:by|on|without)\s*\(([^)]*)\)", rule["expr"]):
            kept = {label.strip() for label in clause.split(",") if label.strip()}
            assert kept <= BOUNDED_LABELS | {"le"}, (name, kept)
        # Every label an annotation uses survives the expression.
        for label in re.findall(r"\$labels\.(\w+)", " ".join(annotations.values())):
            assert label in BOUNDED_LABELS, (name, label)


def test_every_alert_has_a_firing_and_a_silent_unit_test() -> None:
    fires: set[str] = set()
    silent: set[str] = set()
    for case in load_yaml(RULES_TEST)["tests"]:
        for check in case.get("alert_rule_test", []):
            (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names - fires == set(), "alerts no unit test makes fire"
    assert names - silent == set(), "alerts no unit test keeps silent"
    assert load_yaml(RULES_TEST)["rule_files"] == [RULES.name]


def test_grafana_provisioning_points_at_the_dashboards_and_prometheus() -> None:
    datasources = load_yaml(DATASOURCES)["datasources"]
    assert [d["type"] for d in datasources] == ["prometheus"]
    uid = datasources[0]["uid"]
    providers = load_yaml(DASHBOARD_PROVIDERS)["providers"]
    assert providers and all(p["type"] == "file" and p["options"]["path"] for p in providers)

    boards = dashboards()
    assert boards, "no dashboard JSON in ops/grafana/dashboards"
    for file, board in boards.items():
        assert board["uid"] and board["title"], file
        ids = [p["id"] for p in board["panels"]] + [p["id"] for p in panels(board)
                                                      if p not in board["panels"]]
        assert len(ids) == len(set(ids)), f"{file}: duplicate panel ids"
        for panel in panels(board):
            where = f"{file}: panel {panel['title']!r}"
            assert panel["datasource"]["uid"] == uid, where
            assert panel.get("targets"), where
            for target in panel["targets"]:
                assert target["expr"].strip(), where
                assert target.get("datasource", panel["datasource"])["uid"] == uid, where
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24, where


def test_every_dashboard_expression_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each panel query (as a recording rule; Grafana's $__rate_interval
    replaced by a fixed range)."""
    rules = [{"record": f"dashboard:expr_{i}", "expr": grafana_to_promql(expr)}
             for i, (_, expr) in enumerate(
                 expr for board in dashboards().values() for expr in panel_exprs(board))]
    path = tmp_path / "dashboard_exprs.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, _ok(result)
    assert f"{len(rules)} rules found" in result.stdout


def test_the_stall_rule_watches_every_input_topic_of_every_stage() -> None:
    # The rule maps lag on a topic to the stage reading it; the stage table is the truth.
    rule = next(r for r in alert_rules() if r["alert"] == "WirewatchStageStalled")
    mapped = set(re.findall(r'topic=~`\.\*news\\\.(\w+)`\}, "stage", "(\w+)"', rule["expr"]))
    expected = {(TOPICS[key].base.removeprefix("news."), row.name)
                for row in STAGES for key in row.reads}
    assert mapped == expected
