"""Watches managed over the worker's HTTP API; alerts delivered to webhooks; rate limit."""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest

from agents.alert.backfill import backfill
from agents.watch.store import put_watch
from tests.chat_schemas import check_chat_payload
from tests.conftest import SEED_000, SEED_003
from tests.integration.harness import Pipeline

TOKEN = "s3cret-token"


class Receiver(BaseHTTPRequestHandler):
    """A local webhook receiver: /ok answers 200, /fail answers 500."""

    received: list[tuple[str, dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((self.path, orjson.loads(body)))
        self.send_response(200 if self.path == "/ok" else 500)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[int]:
    Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


def call(port: int, method: str, path: str, body: Any = None,
         token: str | None = TOKEN) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", method=method,
        data=None if body is None else orjson.dumps(body),
        headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as err:
        body = err.read()
        try:
            return err.code, orjson.loads(body)
        except orjson.JSONDecodeError:  # e.g. a 500's HTML page
            return err.code, {"raw": body.decode("utf-8", "replace")[:300]}


def test_watches_over_http_webhooks_and_rate_limit(pipeline: Pipeline, receiver: int) -> None:
    port = pipeline.start_worker(
        WIREWATCH_API_TOKEN=TOKEN, WIREWATCH_WEBHOOK_ALLOW="127.0.0.1",
        WIREWATCH_WEBHOOK_ATTEMPTS="2", WIREWATCH_ALERT_RATE_LIMIT="1",
        WIREWATCH_ALERT_RATE_WINDOW_SECONDS="4")
    hook = f"http://127.0.0.1:{receiver}"
    strait = {"name": "Taiwan Strait", "webhook_url": f"{hook}/ok"}
    assert call(port, "POST", "/watches/", strait, token=None)[0] == 401
    assert call(port, "POST", "/watches/", strait, token="wrong")[0] == 401
    status, refused = call(port, "POST", "/watches/",
                           {"name": "x", "webhook_url": "http://10.0.0.1/hook"})
    assert status == 400 and "private" in refused["error"]
    assert call(port, "POST", "/watches/", {"name": "bad (query"})[0] == 400

    started = time.monotonic()
    status, created = call(port, "POST", "/watches/", strait)
    assert status == 201
    status, crisis = call(port, "POST", "/watches/",
                          {"name": "crisis communications", "webhook_url": f"{hook}/fail"})
    assert status == 201
    while len(call(port, "GET", "/watches/")[1]["watches"]) < 2:
        assert time.monotonic() - started < 5, "a new watch must reach the worker quickly"
        time.sleep(0.05)
    assert call(port, "GET", f"/watches/{created['id']}/")[1]["name"] == "Taiwan Strait"

    pipeline.send("raw", SEED_000.read_bytes())
    opened = pipeline.wait_for("alerts", lambda r: r if len(r) >= 2 else None)
    taiwan = next(a for a in opened if a["watch_name"] == "Taiwan Strait")
    # The webhook of "Taiwan Strait" got its alert; "crisis communications" failed twice.
    letters = pipeline.wait_for("deadletter", lambda r: r or None)
    assert letters[0]["stage"] == "webhook" and letters[0]["reason"] == "webhook_failed"
    assert [p for p, _ in Receiver.received].count("/fail") == 2
    assert ("/ok", taiwan) in Receiver.received
    assert pipeline.metric("wirewatch_webhook_deliveries_total", {"outcome": "delivered"}) == 1
    assert pipeline.metric("wirewatch_webhook_deliveries_total", {"outcome": "failed"}) == 1

    # Within the 4 s window the updates of seed 003 are held, then folded into summaries.
    pipeline.send("raw", SEED_003.read_bytes())
    pipeline.wait_metric("wirewatch_alerts_total", {"kind": "suppressed"}, 2)
    alerts = pipeline.wait_for("alerts", lambda r: r if len(r) >= 4 else None, timeout=30)
    summaries = [a for a in alerts if a["kind"] == "summary"]
    assert len(summaries) == 2 and all(s["held_alerts"] == 1 for s in summaries)
    assert {s["story_ids"][0] for s in summaries} == {taiwan["story_id"]}

    assert call(port, "DELETE", f"/watches/{crisis['id']}/", token=None)[0] == 401
    assert call(port, "DELETE", f"/watches/{crisis['id']}/")[0] == 200
    deadline = time.monotonic() + 5
    while len(call(port, "GET", "/watches/")[1]["watches"]) != 1:
        assert time.monotonic() < deadline, "the removal must reach the worker"
        time.sleep(0.05)


def test_chat_webhooks_get_slack_and_teams_payloads(pipeline: Pipeline, receiver: int) -> None:
    """Issue 23 item 6: the seeds' two alerts reach a local receiver as a Slack message and a
    Teams card, each valid by the platform's rules (tests/chat_schemas.py)."""
    port = pipeline.start_worker(WIREWATCH_API_TOKEN=TOKEN, WIREWATCH_WEBHOOK_ALLOW="127.0.0.1")
    hook = f"http://127.0.0.1:{receiver}/ok"
    for name, kind in (("Taiwan Strait", "slack"), ("crisis communications", "teams")):
        status, made = call(port, "POST", "/watches/",
                            {"name": name, "webhook_url": hook, "webhook_format": kind,
                             "priority": "urgent"})
        assert status == 201 and made["webhook_format"] == kind, made
    assert call(port, "POST", "/watches/", {"name": "x", "webhook_format": "xml"})[0] == 400
    deadline = time.monotonic() + 5
    while len(call(port, "GET", "/watches/")[1]["watches"]) < 2:
        assert time.monotonic() < deadline, "the new watches must reach the worker"
        time.sleep(0.05)

    pipeline.send("raw", SEED_000.read_bytes())
    pipeline.wait_metric("wirewatch_webhook_deliveries_total", {"outcome": "delivered"}, 2)
    payloads = [body for _, body in Receiver.received]
    slack = [p for p in payloads if "attachments" in p and "blocks" in p["attachments"][0]]
    teams = [p for p in payloads if p.get("type") == "message"]
    assert len(slack) == len(teams) == 1, payloads
    check_chat_payload("slack", slack[0])
    check_chat_payload("teams", teams[0])
    assert "URGENT · Taiwan Strait" in slack[0]["text"]
    card = teams[0]["attachments"][0]["content"]
    assert card["body"][0]["text"].startswith("URGENT · crisis communications")
    (alert,) = [a for a in pipeline.json_records("alerts") if a["watch_name"] == "Taiwan Strait"]
    assert alert["priority"] == "urgent" and alert["priority_reason"]


def test_backfill_alerts_on_stories_seen_before_the_watch_existed(pipeline: Pipeline) -> None:
    pipeline.start_worker()
    pipeline.send("raw", SEED_000.read_bytes())
    pipeline.wait_for("stories", lambda r: r or None)
    assert pipeline.json_records("alerts") == []

    watch = put_watch(pipeline.settings, "Taiwan Strait")
    assert asyncio.run(backfill(pipeline.settings, watch)) == 1
    (alert,) = pipeline.wait_for("alerts", lambda r: r or None)
    assert alert["kind"] == "opened" and alert["watch_id"] == watch.id

    # Idempotent: a second backfill re-sends the hit, and the alert state ignores it.
    assert asyncio.run(backfill(pipeline.settings, watch)) == 1
    pipeline.wait_metric("wirewatch_articles_total", {"stage": "alert", "outcome": "dropped"}, 2)
    assert len(pipeline.json_records("alerts")) == 1


# Each was a 500 (or accepted) before every entry point shared one validation.
BAD_BODIES: list[dict[str, Any]] = [
    {"name": "w", "webhook_url": "http://host:99999/"},
    {"name": "w", "webhook_url": "http://host:abc/"},
    {"name": "w", "webhook_url": "http://[::1/"},
    {"name": "w", "webhook_url": f"http://{'a' * 64}.com/"},
    {"name": "w", "webhook_url": f"http://{'a' * 10_000}.com/"},
    {"name": "w", "webhook_url": "http://100.64.0.1/hook"},
    {"name": "w", "webhook_url": 5},
    {"name": "w", "rate_limit": True},
    {"name": "w", "rate_limit": 2**63},
    {"name": "w", "rate_limit": 0},
    {"name": "w", "rate_limit": -1},
    {"name": "w", "rate_limit": 1.5},
    {"name": "Taiwan\x00Strait"},
    {"name": "w", "query": "Taiwan\x00Strait"},
    {"name": "w" * 201},
    {"name": "w", "query": 5},
    {"name": 5},
    {"name": ""},
]


def test_every_invalid_watch_is_a_400_with_a_reason_and_the_feed_skips_bad_records(
        pipeline: Pipeline) -> None:
    port = pipeline.start_worker(WIREWATCH_API_TOKEN=TOKEN)
    answers = [(body, *call(port, "POST", "/watches/", body)) for body in BAD_BODIES]
    problems = [(str(body)[:80], status, reply) for body, status, reply in answers
                if status != 400 or not isinstance(reply.get("error"), str) or not reply["error"]]
    zero = answers[BAD_BODIES.index({"name": "w", "rate_limit": 0})]
    if "omit" not in str(zero[2]):
        problems.append(("rate_limit 0 must say to omit it", zero[1], zero[2]))

    # Records any producer may write to news.watches: logged and skipped, never a crash.
    bad = [orjson.dumps({"id": "b1", "name": "n", "query": 5}),
           orjson.dumps({"id": "b2", "name": "n\x00", "query": "n"}),
           orjson.dumps({"id": "b3", "name": "n", "query": "n", "rate_limit": -1}),
           orjson.dumps({"id": "b4", "name": "n", "query": "n", "webhook_url": "http://[::1/"}),
           b"not json"]
    pipeline.send("watches", *bad, keys=[b"b1", b"b2", b"b3", b"b4", b"b5"])
    status, created = call(port, "POST", "/watches/", {"name": "Taiwan Strait", "rate_limit": 3})
    assert status == 201 and created["rate_limit"] == 3
    deadline = time.monotonic() + 10
    while [w["id"] for w in call(port, "GET", "/watches/")[1]["watches"]] != [created["id"]]:
        if time.monotonic() > deadline:
            problems.append(("the feed must skip bad records and go on", 0, pipeline.log()[-150:]))
            break
        time.sleep(0.1)
    log = pipeline.workers[0][2].read_text(errors="replace")
    if log.count("invalid watch") < len(bad):
        problems.append(("each bad record is logged", log.count("invalid watch"), ""))
    assert not problems, "\n".join(f"{what} -> {status} {str(reply)[:150]}"
                                    for what, status, reply in problems)
