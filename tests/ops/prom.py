"""The real Prometheus and promtool (Debian's ``prometheus`` package, installed by
``make test``), and what the ops tests share: file paths, PromQL identifiers, the metric
names a worker exports.

A missing binary fails the test with the command that installs it; it is never a skip.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from streams.processes import free_port

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
OPS = REPO / "ops"
PROMETHEUS_DIR = OPS / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULES = PROMETHEUS_DIR / "rules.yml"
RULES_TEST = PROMETHEUS_DIR / "rules_test.yml"
GRAFANA_DIR = OPS / "grafana"
DASHBOARDS_DIR = GRAFANA_DIR / "dashboards"
DATASOURCES = GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = GRAFANA_DIR / "provisioning" / "dashboards" / "wirewatch.yml"

PROMETHEUS_BIN = Path("/usr/bin/prometheus")
PROMTOOL_BIN = Path("/usr/bin/promtool")

# A wirewatch metric name anywhere in a PromQL expression.
METRIC_NAME = re.compile(r"\bwirewatch_[a-zA-Z0-9_]*[a-zA-Z0-9]")


def require(binary: Path) -> str:
    if not binary.is_file():
        pytest.fail(f"{binary} is missing: run `make prometheus-tools` (as root: apt-get install "
                    "prometheus), which `make test` does first", pytrace=False)
    return str(binary)


def promtool(*args: str, cwd: Path = PROMETHEUS_DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require(PROMTOOL_BIN), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60, check=False)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(RULES)["groups"] for rule in group["rules"]
            if "alert" in rule]


def dashboards() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text(encoding="utf-8"))
            for path in sorted(DASHBOARDS_DIR.glob("*.json"))}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel that queries (rows are containers; collapsed rows nest their panels)."""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            yield from (p for p in panel.get("panels", []) if p.get("type") != "row")
        else:
            yield panel


def panel_exprs(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, PromQL expression) for every target of every panel."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield panel["title"], target.get("expr", "")


def grafana_to_promql(expr: str, rate_interval: str = "1m") -> str:
    """A panel expression as plain PromQL: Grafana's range variables become a fixed range."""
    for var in ("$__rate_interval", "$__interval", "$__range"):
        expr = expr.replace(var, rate_interval)
    return expr


def exported_names(exposition: str) -> set[str]:
    """Sample names in a /metrics page: counters with _total, histograms' _bucket/_sum/_count,
    info metrics' _info."""
    return {sample.name for family in text_string_to_metric_families(exposition)
            for sample in family.samples}


def exported_samples(exposition: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(exposition) for s in family.samples}


def poll(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.5
         ) -> T:
    """``check()`` until it returns something truthy, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; "
                                 f"last answer: {str(last)[:2000]}")
        time.sleep(interval)


class Prometheus:
    """A real Prometheus server on a free loopback port, storage under ``workdir``."""

    def __init__(self, config: Path, workdir: Path) -> None:
        self.config = config
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "prometheus.log"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Prometheus:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [require(PROMETHEUS_BIN), f"--config.file={self.config}",
                 f"--storage.tsdb.path={self.workdir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        try:
            poll(self._ready, 30, "Prometheus to be ready")
        except AssertionError:
            self.__exit__(None, None, None)
            raise AssertionError("Prometheus did not start:\n" + self.log()) from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"Prometheus exited with {self.process.returncode}:\n{self.log()}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=5) as resp:
            body = json.loads(resp.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant query; the result vector (raises on a PromQL error)."""
        data = self.api("query", query=promql)
        assert data["resultType"] == "vector", data
        return list(data["result"])

    def value(self, promql: str) -> float | None:
        """The single value of a query, or None while it has no result."""
        result = self.query(promql)
        assert len(result) <= 1, f"{promql} returned {len(result)} series: {result}"
        return float(result[0]["value"][1]) if result else None

    def alerts(self) -> list[dict[str, Any]]:
        return list(self.api("alerts")["alerts"])

    def rules(self) -> list[dict[str, Any]]:
        return [rule for group in self.api("rules")["groups"] for rule in group["rules"]]
