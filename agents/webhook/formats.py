"""What a webhook receives, by the watch's ``webhook_format``:

* ``json``: the alert record itself, as on news.alerts;
* ``slack``: a Slack message (incoming webhook): Block Kit blocks inside an attachment, whose
  ``color`` bar shows the priority (flash red, urgent amber, routine blue); a header, the
  title linked to the article, the kind, revision and sources, up to three snippets with the
  matched terms in bold, and why it fired;
* ``teams``: a Microsoft Teams message (incoming webhook / Workflows) carrying an Adaptive
  Card 1.4 with the same content and an "Open article" action.

Slack's mrkdwn gives ``&``, ``<`` and ``>`` meaning (links, mentions), so article text is
escaped: a title cannot become a link or an @channel. Only http(s) URLs become links. Texts
are cut to the platforms' limits (Slack: a header 150 characters, a section 3,000).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import orjson

from streams.records import Alert, Match

__all__ = ["FORMATS", "webhook_body"]

SLACK_COLOURS = {"flash": "#d1242f", "urgent": "#d4a72c", "routine": "#0969da"}
TEAMS_COLOURS = {"flash": "Attention", "urgent": "Warning", "routine": "Accent"}
MAX_SNIPPETS = 3
MAX_SOURCES_SHOWN = 8
SLACK_HEADER_CHARS = 150
SLACK_TEXT_CHARS = 3000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _plain(text: str | None, limit: int) -> str:
    text = _CONTROL.sub(" ", text or "")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _http_url(url: str | None) -> str | None:
    if url and url.lower().startswith(("http://", "https://")) and not _CONTROL.search(url):
        return url
    return None


def _headline(alert: Alert) -> str:
    what = {"opened": "new story", "update": "update", "surge": "SURGE",
            "summary": "held alerts"}.get(alert.kind, alert.kind)
    return f"{alert.priority.upper()} · {alert.watch_name} · {what}"


def _sources_line(alert: Alert) -> str:
    shown = ", ".join(alert.sources[:MAX_SOURCES_SHOWN])
    more = len(alert.sources) - MAX_SOURCES_SHOWN
    count = f"{len(alert.sources)} source{'s' if len(alert.sources) != 1 else ''}"
    return f"{count}: {shown}{f' and {more} more' if more > 0 else ''}" if shown else count


def _why(alert: Alert) -> str:
    parts = [f"priority {alert.priority}: {alert.priority_reason}" if alert.priority_reason
             else f"priority {alert.priority}"]
    if alert.signal is not None and alert.signal.detail:
        parts.append(alert.signal.detail)
    if alert.terms:
        parts.append("matched " + ", ".join(alert.terms[:10]))
    return " · ".join(parts)


def _highlighted(match: Match, mark: Callable[[str], str],
                 escape: Callable[[str], str]) -> str:
    """The snippet with the matched term marked, everything else escaped."""
    snippet = match.snippet
    at = snippet.lower().find(match.term.lower())
    if at < 0:
        return escape(snippet)
    end = at + len(match.term)
    return escape(snippet[:at]) + mark(escape(snippet[at:end])) + escape(snippet[end:])


def slack_message(alert: Alert) -> dict[str, object]:
    title = _slack_escape(_plain(alert.title, 500))
    url = _http_url(alert.url)
    # In a link, "|" ends the URL and ">" the link: a URL holding them is shown, not linked.
    linked = f"<{url}|{title}>" if url and "|" not in url and ">" not in url else title
    lines = [f"*{linked}*",
             f"{alert.kind} r{alert.revision} · {_slack_escape(_sources_line(alert))}"]
    blocks: list[dict[str, object]] = [
        {"type": "header", "text": {"type": "plain_text", "emoji": False,
                                    "text": _plain(_headline(alert), SLACK_HEADER_CHARS)}},
        {"type": "section", "text": {"type": "mrkdwn",
                                     "text": _plain("\n".join(lines), SLACK_TEXT_CHARS)}},
    ]
    for match in alert.matches[:MAX_SNIPPETS]:
        text = "> " + _highlighted(match, lambda t: f"*{t}*", _slack_escape)
        blocks.append({"type": "section",
                       "text": {"type": "mrkdwn", "text": _plain(text, SLACK_TEXT_CHARS)}})
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": _plain(_slack_escape(_why(alert)), SLACK_TEXT_CHARS)}]})
    return {
        # The notification's text: Slack reads it as mrkdwn too.
        "text": _plain(_slack_escape(f"{_headline(alert)}: {alert.title}"), SLACK_TEXT_CHARS),
        "attachments": [{"color": SLACK_COLOURS.get(alert.priority, SLACK_COLOURS["routine"]),
                         "blocks": blocks}],
    }


def teams_message(alert: Alert) -> dict[str, object]:
    body: list[dict[str, object]] = [
        {"type": "TextBlock", "text": _plain(_headline(alert), 300), "weight": "Bolder",
         "color": TEAMS_COLOURS.get(alert.priority, "Accent"), "wrap": True},
        {"type": "TextBlock", "text": _plain(alert.title, 500), "size": "Medium",
         "weight": "Bolder", "wrap": True},
        {"type": "FactSet", "facts": [
            {"title": "Alert", "value": f"{alert.kind} r{alert.revision}"},
            {"title": "Sources", "value": _plain(_sources_line(alert), 1000)},
            {"title": "Why", "value": _plain(_why(alert), 1000)},
        ]},
    ]
    for match in alert.matches[:MAX_SNIPPETS]:
        body.append({"type": "TextBlock", "wrap": True, "isSubtle": True,
                     "text": _plain(_highlighted(match, lambda t: f"**{t}**", str), 1000)})
    card: dict[str, object] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard", "version": "1.4", "body": body,
    }
    url = _http_url(alert.url)
    if url:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open article", "url": url}]
    return {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
         "content": card}]}


FORMATS: dict[str, Callable[[Alert], dict[str, object]] | None] = {
    "json": None, "slack": slack_message, "teams": teams_message,
}


def webhook_body(record: bytes, alert: Alert, webhook_format: str) -> bytes:
    """The body to POST for ``alert`` (``record``: its bytes on news.alerts)."""
    build = FORMATS.get(webhook_format)
    return record if build is None else orjson.dumps(build(alert))
