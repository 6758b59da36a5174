"""The structure Slack and Microsoft Teams accept from an incoming webhook, as JSON Schemas
(the parts wirewatch uses, with the platforms' documented limits), for the tests of
agents/webhook/formats.py: a payload that breaks them is refused by the platform."""

from __future__ import annotations

from typing import Any

import jsonschema

_SLACK_TEXT = {
    "type": "object", "required": ["type", "text"], "additionalProperties": False,
    "properties": {"type": {"enum": ["mrkdwn"]}, "text": {"type": "string", "minLength": 1,
                                                          "maxLength": 3000}},
}
_SLACK_PLAIN = {
    "type": "object", "required": ["type", "text"], "additionalProperties": False,
    "properties": {"type": {"const": "plain_text"}, "emoji": {"type": "boolean"},
                   "text": {"type": "string", "minLength": 1, "maxLength": 150}},
}
_SLACK_BLOCK = {"oneOf": [
    {"type": "object", "required": ["type", "text"], "additionalProperties": False,
     "properties": {"type": {"const": "header"}, "text": _SLACK_PLAIN}},
    {"type": "object", "required": ["type", "text"], "additionalProperties": False,
     "properties": {"type": {"const": "section"}, "text": _SLACK_TEXT}},
    {"type": "object", "required": ["type", "elements"], "additionalProperties": False,
     "properties": {"type": {"const": "context"},
                    "elements": {"type": "array", "minItems": 1, "maxItems": 10,
                                 "items": _SLACK_TEXT}}},
]}
SLACK_MESSAGE: dict[str, Any] = {
    "type": "object", "required": ["text", "attachments"], "additionalProperties": False,
    "properties": {
        "text": {"type": "string", "minLength": 1, "maxLength": 40000},
        "attachments": {"type": "array", "minItems": 1, "maxItems": 1, "items": {
            "type": "object", "required": ["color", "blocks"], "additionalProperties": False,
            "properties": {
                "color": {"type": "string", "pattern": "^#[0-9a-f]{6}$"},
                "blocks": {"type": "array", "minItems": 1, "maxItems": 50,
                           "items": _SLACK_BLOCK},
            }}},
    },
}

_CARD_ELEMENT = {"oneOf": [
    {"type": "object", "required": ["type", "text"],
     "properties": {"type": {"const": "TextBlock"}, "text": {"type": "string", "minLength": 1},
                    "wrap": {"type": "boolean"}, "isSubtle": {"type": "boolean"},
                    "weight": {"enum": ["Default", "Lighter", "Bolder"]},
                    "size": {"enum": ["Default", "Small", "Medium", "Large", "ExtraLarge"]},
                    "color": {"enum": ["Default", "Dark", "Light", "Accent", "Good", "Warning",
                                       "Attention"]}},
     "additionalProperties": False},
    {"type": "object", "required": ["type", "facts"], "additionalProperties": False,
     "properties": {"type": {"const": "FactSet"}, "facts": {"type": "array", "items": {
         "type": "object", "required": ["title", "value"], "additionalProperties": False,
         "properties": {"title": {"type": "string"}, "value": {"type": "string"}}}}}},
]}
TEAMS_MESSAGE: dict[str, Any] = {
    "type": "object", "required": ["type", "attachments"], "additionalProperties": False,
    "properties": {
        "type": {"const": "message"},
        "attachments": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["contentType", "content"],
            "additionalProperties": False,
            "properties": {
                "contentType": {"const": "application/vnd.microsoft.card.adaptive"},
                "contentUrl": {"type": "null"},
                "content": {
                    "type": "object", "required": ["type", "version", "body"],
                    "additionalProperties": False,
                    "properties": {
                        "$schema": {"const": "http://adaptivecards.io/schemas/adaptive-card.json"},
                        "type": {"const": "AdaptiveCard"},
                        "version": {"enum": ["1.2", "1.3", "1.4", "1.5"]},
                        "body": {"type": "array", "minItems": 1, "items": _CARD_ELEMENT},
                        "actions": {"type": "array", "items": {
                            "type": "object", "required": ["type", "title", "url"],
                            "additionalProperties": False,
                            "properties": {"type": {"const": "Action.OpenUrl"},
                                           "title": {"type": "string"},
                                           "url": {"type": "string",
                                                   "pattern": "^https?://"}}}},
                    }},
            }}},
    },
}

SCHEMAS = {"slack": SLACK_MESSAGE, "teams": TEAMS_MESSAGE}


def check_chat_payload(kind: str, payload: Any) -> None:
    """Raises ``jsonschema.ValidationError`` when ``payload`` breaks the platform's rules."""
    jsonschema.validate(payload, SCHEMAS[kind])
