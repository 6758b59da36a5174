"""Chat-ready webhook payloads (agents/webhook/formats.py) against the platforms' rules."""

from __future__ import annotations

import jsonschema
import orjson
import pytest

from agents.webhook.formats import slack_message, teams_message, webhook_body
from streams.records import Alert, Match, Signal, encode
from tests.chat_schemas import check_chat_payload


def _alert(**changes: object) -> Alert:
    alert = Alert(
        alert_id="al1", kind="surge", revision=3, watch_id="w1", watch_name="Taiwan Strait",
        story_id="s1", article_id="a3", title="Warships gather in the Taiwan Strait",
        url="https://example.com/news/1", source="Example", published_at=None,
        sources=[f"Outlet {n}" for n in range(12)], article_ids=["a1", "a2", "a3"],
        terms=["Taiwan Strait"],
        matches=[Match("Taiwan Strait", "text", 10, 23,
                       "…ships in the Taiwan Strait on Monday…")],
        opened_at=1.0, updated_at=2.0, received_at=2.0, priority="flash",
        priority_reason="the story is surging",
        signal=Signal("surge", "15m", 6, 0.4, 3.0, "6 new sources in 15 min"))
    for name, value in changes.items():
        setattr(alert, name, value)
    return alert


@pytest.mark.parametrize("kind,build", [("slack", slack_message), ("teams", teams_message)])
def test_payloads_follow_the_platforms_rules(kind: str, build: object) -> None:
    for alert in (_alert(), _alert(kind="opened", priority="routine", signal=None, matches=[],
                                   url=None, sources=[], priority_reason="")):
        check_chat_payload(kind, orjson.loads(orjson.dumps(build(alert))))  # type: ignore[operator]


def test_slack_shows_priority_title_link_sources_and_snippets() -> None:
    message = slack_message(_alert())
    attachment = message["attachments"][0]  # type: ignore[index]
    assert attachment["color"] == "#d1242f"
    text = orjson.dumps(message).decode()
    assert "<https://example.com/news/1|Warships gather in the Taiwan Strait>" in text
    assert "FLASH · Taiwan Strait · SURGE" in text
    assert "12 sources: Outlet 0" in text and "and 4 more" in text
    assert "*Taiwan Strait*" in text  # the matched term in bold
    assert "6 new sources in 15 min" in text


def test_slack_escapes_article_text() -> None:
    hostile = _alert(title="<!channel> <https://evil.example|click> & co",
                     url="javascript:alert(1)", sources=["<@U123>"])
    check_chat_payload("slack", orjson.loads(orjson.dumps(slack_message(hostile))))
    text = orjson.dumps(slack_message(hostile)).decode()
    assert "<!channel>" not in text and "<https://evil" not in text and "<@U123>" not in text
    assert "&lt;!channel&gt;" in text and "javascript:" not in text


def test_limits_are_kept() -> None:
    long = _alert(watch_name="w" * 500, title="t" * 10_000,
                  matches=[Match("x", "text", 0, 1, "x" * 5000)] * 10)
    check_chat_payload("slack", orjson.loads(orjson.dumps(slack_message(long))))
    check_chat_payload("teams", orjson.loads(orjson.dumps(teams_message(long))))


def test_teams_card_has_the_open_action_only_for_web_links() -> None:
    card = teams_message(_alert())["attachments"][0]["content"]  # type: ignore[index]
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open article",
                                "url": "https://example.com/news/1"}]
    bad = teams_message(_alert(url="file:///etc/passwd"))["attachments"][0]["content"]  # type: ignore[index]
    assert "actions" not in bad


def test_json_is_the_record_itself_and_a_broken_payload_is_caught() -> None:
    alert = _alert()
    assert webhook_body(encode(alert), alert, "json") == encode(alert)
    assert orjson.loads(webhook_body(encode(alert), alert, "slack"))["attachments"]
    with pytest.raises(jsonschema.ValidationError):  # the schema can fail
        check_chat_payload("slack", {"text": "x", "attachments": [{"color": "red", "blocks": []}]})
