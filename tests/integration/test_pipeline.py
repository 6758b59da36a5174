"""Issue 2's acceptance test: the seeds through a real worker on the embedded Kafka broker."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest

from agents.watch.store import put_watch
from tests.conftest import SEED_000, SEED_003
from tests.integration.harness import Pipeline

BENZINGA_FOOTER = ("See Also:", "Read Next:", "Photo via", "This story was generated",
                   "Market News and Data", "Posted In:", "Benzinga simplifies", "Join Now",
                   "Trade confidently")


def _alerts(records: list[dict[str, Any]], n: int) -> list[dict[str, Any]] | None:
    return records if len(records) >= n else None


def _story_of(records: list[dict[str, Any]], needle: str) -> dict[str, Any] | None:
    return next((r for r in records if needle in r["text"]), None)


def near_copy_of_seed_000() -> bytes:
    """Seed 000 re-published elsewhere: another footer, one sentence reworded."""
    text = SEED_000.read_text(encoding="utf-8")
    body = text.split("Read Next:")[0]
    original = "The dialogue, which extended to 75 minutes, surpassed the anticipated duration"
    assert original in body
    body = body.replace(original, "The talks ran for 75 minutes, longer than planned")
    return (body + "\nDistributed by Example Syndication Service. Reprinted with permission.\n"
            ).encode("utf-8")


def test_seeds_open_then_update_alerts_and_share_a_story(pipeline: Pipeline,
                                                         tmp_path: Path) -> None:
    watch_file = tmp_path / "watches.txt"
    watch_file.write_text("Taiwan Strait: Taiwan Strait\n")  # one watch from a file...
    put_watch(pipeline.settings, "crisis communications")  # ...and one from the topic
    pipeline.start_worker(WIREWATCH_WATCHES_FILE=str(watch_file))

    pipeline.send("raw", SEED_000.read_bytes())
    opened = pipeline.wait_for("alerts", lambda r: _alerts(r, 2))
    assert {a["kind"] for a in opened} == {"opened"}
    assert {a["watch_name"] for a in opened} == {"Taiwan Strait", "crisis communications"}
    for alert in opened:
        assert alert["matches"], "an alert must say why it fired"
        for match in alert["matches"]:
            assert match["term"].lower().split()[0] in match["snippet"].lower()

    pipeline.send("raw", SEED_003.read_bytes())
    alerts = pipeline.wait_for("alerts", lambda r: _alerts(r, 4))
    assert len(alerts) == 4
    updates = alerts[2:]
    assert {a["kind"] for a in updates} == {"update"}
    assert {a["alert_id"] for a in updates} == {a["alert_id"] for a in opened}
    assert all(a["revision"] == 2 and len(a["article_ids"]) == 2 for a in updates)
    crisis = next(a for a in updates if a["watch_name"] == "crisis communications")
    assert any("crisis-communications" in m["snippet"] for m in crisis["matches"])

    stories = pipeline.wait_for("stories", lambda r: _alerts(r, 2))
    first = _story_of(stories, "Shangri-La Dialogue")
    second = _story_of(stories, "defuse growing tensions")
    assert first and second
    assert first["story_id"] == second["story_id"], "two outlets on one event: one story"
    for marker in BENZINGA_FOOTER:
        assert marker not in first["text"], f"footer line {marker!r} left in the cleaned body"
    assert "What Happened:" in first["text"] and "Why It Matters:" in first["text"]
    assert second["published_at"] == "2024-05-31"

    # The first seed again: an exact duplicate, dropped and counted; no alert.
    pipeline.send("raw", SEED_000.read_bytes())
    pipeline.wait_metric("wirewatch_duplicates_total", {"kind": "exact"}, 1)
    assert pipeline.metric("wirewatch_articles_total", {"stage": "dedup", "outcome": "dropped"}) == 1

    # A re-published copy with another footer and a changed sentence: a near duplicate.
    pipeline.send("raw", near_copy_of_seed_000())
    stories = pipeline.wait_for("stories", lambda r: _alerts(r, 3))
    assert len(stories) == 3, "the exact duplicate must not reach news.stories"
    copy = stories[2]
    assert copy["duplicate_of"] == first["id"]
    assert copy["story_id"] == first["story_id"]
    assert pipeline.metric("wirewatch_duplicates_total", {"kind": "near"}) == 1

    alerts = pipeline.wait_for("alerts", lambda r: _alerts(r, 6))
    assert [a["kind"] for a in alerts].count("opened") == 2, "no alert re-opened"
    assert pipeline.metric("wirewatch_alerts_total", {"kind": "opened"}) == 2

    # Caught up: the lag sampler (every 5 s) reports 0 for the dedup input.
    tagged = {"topic": pipeline.topic("tagged"), "partition": "0"}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if pipeline.metric("wirewatch_consumer_lag_messages", tagged) == 0:
                break
        except AssertionError:  # not sampled yet
            pass
        time.sleep(0.5)
    assert pipeline.metric("wirewatch_consumer_lag_messages", tagged) == 0
    assert pipeline.metric("wirewatch_consumer_lag_seconds", tagged) == 0


BAD_INPUTS: list[tuple[str, bytes]] = [
    ("malformed_json", b'{"title": "cut off", "text": "never clos'),
    ("not_an_object", b'["a", "json", "array"]'),
    ("not_an_object", b"42"),
    ("wrong_field_type", json.dumps({"title": 42, "text": "A body about the Taiwan Strait."}
                                    ).encode()),
    ("empty_body", b""),
    ("empty_body", json.dumps({"title": "Only a title", "text": "   "}).encode()),
    ("bad_encoding", "Caf\u00e9 au lait in the Taiwan Strait".encode("latin-1")),
    ("binary", bytes(range(256)) * 8),
    ("too_large", b"A" * 300_000),
]


def test_bad_input_is_dead_lettered_and_the_stream_goes_on(pipeline: Pipeline) -> None:
    put_watch(pipeline.settings, "Taiwan Strait")
    pipeline.start_worker(WIREWATCH_MAX_MESSAGE_BYTES="200000", WIREWATCH_LOG_FORMAT="json")
    good = orjson.dumps({"id": "good-after-bad", "source": "Test Wire",
                         "title": "Patrols in the Taiwan Strait",
                         "text": "Coast guard ships patrolled the Taiwan Strait on Monday."})
    pipeline.send("raw", *[payload for _, payload in BAD_INPUTS], good)

    letters = pipeline.wait_for("deadletter", lambda r: _alerts(r, len(BAD_INPUTS)))
    # news.raw has several partitions, so compare as multisets, not in order.
    assert sorted(d["reason"] for d in letters) == sorted(reason for reason, _ in BAD_INPUTS)
    # Each dead letter names the exact place of its message on news.raw.
    raw = pipeline.positioned("raw")
    for letter in letters:
        assert letter["stage"] == "clean" and letter["error"]
        assert letter["topic"] == pipeline.topic("raw")
        original = raw[(letter["partition"], letter["offset"])]
        assert base64.b64encode(original or b"").decode("ascii") == letter["payload_b64"]
    # The original payload travels with its dead letter (the empty one is empty).
    sent = {base64.b64encode(payload).decode("ascii") for _, payload in BAD_INPUTS}
    assert {d["payload_b64"] for d in letters} == sent

    alerts = pipeline.wait_for("alerts", lambda r: _alerts(r, 1))
    assert alerts[0]["article_id"] == "good-after-bad"
    assert pipeline.metric("wirewatch_dead_letters_total",
                           {"stage": "clean", "reason": "not_an_object"}) == 2

    # Without WIREWATCH_API_TOKEN, the HTTP write calls are disabled.
    request = urllib.request.Request(
        f"http://127.0.0.1:{pipeline.workers[0][1]}/watches/", method="POST",
        data=b'{"name": "x"}')
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403

    # JSON logs: one object per line, dead letters with their position as fields.
    lines = [orjson.loads(line) for line in pipeline.log().splitlines() if line.startswith("{")]
    dead = [entry for entry in lines if entry.get("reason") == "malformed_json"]
    assert dead and dead[0]["topic"] == pipeline.topic("raw") and dead[0]["stage"] == "clean"
    (malformed,) = [d for d in letters if d["reason"] == "malformed_json"]
    assert (dead[0]["partition"], dead[0]["offset"]) == (malformed["partition"],
                                                         malformed["offset"])
