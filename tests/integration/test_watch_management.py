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
from streams.client import put_watch
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
        return err.code, orjson.loads(err.read())


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
