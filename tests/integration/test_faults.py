"""`bench/faults.py --short`: every fault scenario, small, against real workers, and its
numbers held to the pass rule (issue 17).

The suite runs in a child process on the session's broker (``--broker``) for every scenario
but ``broker_kill``, which starts a broker of its own (with a persistent data folder) since
it kills it with SIGKILL and starts it again. The assertions read the JSON it writes: each
number of the pass rule is checked here, not only the script's verdict, so a scenario that
reports PASS with a lost article still fails this test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from streams.broker import EmbeddedKafka
from tests.conftest import REPO

#: Every scenario, CI included. ``worker_kill`` and ``worker_takeover`` were left out until
#: streams/offsets.py stopped Faust from committing past messages it had skipped during a
#: rebalance (6 articles of 1,200 lost after a kill) and learnt to restart a stalled fetch.
SCENARIOS = ("broker_kill", "worker_kill", "worker_takeover", "hostile", "watches", "http_load")


def _problems(r: dict[str, Any]) -> list[str]:
    """Every way one scenario's numbers break the pass rule."""
    name, details = r["scenario"], r["details"]
    missing = {"ok": False, "detail": "not reached (the scenario stopped before it)"}
    checks = {k: r["checks"].get(k, missing) for k in
              ("same_port", "all_published", "survivor_took_over", "hostile_dead_lettered",
               "hostile_bounded", "watch_outcomes", "watch_registry")} | r["checks"]
    out = []

    def expect(ok: bool, what: str) -> None:
        if not ok:
            out.append(f"{name}: {what}")

    expect(r["published"] > 0, "published no good article")
    expect(r["lost"] == 0 and r["reached_stories"] == r["published"],
           f"{r['lost']} of {r['published']} good articles never reached news.stories "
           f"(e.g. {details.get('lost_ids', [])[:5]})")
    expect(r["duplicate_revisions"] == 0,
           f"{r['duplicate_revisions']} repeated (alert_id, revision): "
           f"{details.get('repeated_alerts')}")
    expect(r["opened_twice"] == 0, f"{r['opened_twice']} alerts opened twice")
    expect(r["internal_errors"] == 0, f"{r['internal_errors']} internal_error dead letters")
    expect(not r["unexpected_exits"],
           f"workers exited on their own: {[e['code'] for e in r['unexpected_exits']]}")
    if name in ("watches", "http_load"):
        expect(r["http_5xx"] == 0, f"{r['http_5xx']} HTTP 5xx responses")
    if name == "broker_kill":
        expect(r["faults"] == 1 and checks["same_port"]["ok"],
               f"broker not back on its port: {checks.get('same_port')}")
        expect(checks["all_published"]["ok"], checks["all_published"]["detail"])
    if name == "worker_kill":
        expect(r["faults"] == 1 and r["worker_restarts"] == 1,
               f"{r['faults']} kills, {r['worker_restarts']} restarts (short: 1 and 1)")
    if name in ("broker_kill", "worker_kill", "worker_takeover"):
        expect(r["recovery_s"] is not None and r["recovery_s"] < 120,
               f"recovery {r['recovery_s']} s")
    if name == "worker_takeover":
        expect(r["worker_restarts"] == 0 and checks["survivor_took_over"]["ok"],
               f"the survivor did not take over: {checks['survivor_took_over']['detail']}")
    if name == "hostile":
        expect(details.get("hostile") == 30, f"{details.get('hostile')} hostile payloads, not 30")
        for check in ("hostile_dead_lettered", "hostile_bounded"):
            expect(checks[check]["ok"], f"{check}: {checks[check]['detail']}")
    if name == "watches":
        cases = details.get("watch_cases", {})
        expect(cases.get("http", 0) > 0 and cases.get("cli", 0) > 0, f"cases {cases}")
        for check in ("watch_outcomes", "watch_registry"):
            expect(checks[check]["ok"], f"{check}: {checks[check]['detail']}")
    if name == "http_load":
        # The throughput ratio under load is the full run's target (make faults), not a
        # test's: timed on a busy machine it failed CI at 0.40 while nothing was wrong.
        expect(details.get("ratio", 0) > 0, f"no throughput measured: {details.get('ratio')}")
        expect("throughput_ratio" not in r["checks"], "the short run holds no speed target")
        expect(details.get("http", {}).get("served", 0) > 0, "the load got no response at all")
    # The script's own verdict agrees with its checks.
    expect(r["pass"] == all(c["ok"] for c in r["checks"].values()),
           f"verdict {r['pass']} disagrees with its checks {r['checks']}")
    failed = {k: c["detail"] for k, c in r["checks"].items() if not c["ok"]}
    expect(not failed, f"failed checks {failed}")
    return out


@pytest.mark.timeout(660)
def test_fault_suite_short_meets_the_pass_rule(kafka: EmbeddedKafka, tmp_path: Path) -> None:
    out = tmp_path / "faults.json"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "faults.py"), "--short", "--broker", kafka.url,
         "--only", ",".join(SCENARIOS), "--out", str(out), "--max-minutes", "10"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=640, check=False)
    assert out.exists(), f"exit {result.returncode}:\n{result.stdout[-3000:]}{result.stderr[-5000:]}"
    res = json.loads(out.read_text())
    assert res["short"] is True
    assert [r["scenario"] for r in res["scenarios"]] == list(SCENARIOS), res["table"]
    assert res["table"] in result.stdout
    problems = [p for r in res["scenarios"] for p in _problems(r)]
    assert not problems, "\n".join(problems) + "\n\n" + res["table"]
    assert res["pass"] and result.returncode == 0, result.stdout[-3000:]
