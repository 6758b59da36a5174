"""The one exception tree of wirewatch.

    WirewatchError
    ├── ConfigError            a WIREWATCH_* setting is missing or invalid
    ├── BrokerError            the embedded broker could not be fetched or started
    ├── WatchError             a watch definition is invalid (bad query, bad file)
    └── RejectedInput          one message cannot be processed; it goes to the dead-letter topic
        ├── TooLarge           payload over the configured size limit (or HTML nested too deep)
        ├── FieldTooLong       a field (id, url, source...) or the key used as id over its bound
        ├── BadId              an id (or the key used as id) with control characters
        ├── TooComplex         HTML that would cost the parser superlinear time or memory
        ├── BadEncoding        bytes that are not UTF-8
        ├── BinaryPayload      control characters / NUL bytes: not text
        ├── MalformedJSON      looks like JSON but does not parse
        ├── NotAnObject        valid JSON, but an array, number, string...
        ├── WrongFieldType     a JSON field of the wrong type (e.g. "title": 42)
        ├── EmptyBody          nothing left to process once markup and boilerplate are gone
        └── BadRecord          a record on an internal topic that does not match the schema

Every ``RejectedInput`` carries a short, stable ``reason`` code (used as a metric label and
in the dead letter) and a human-readable message.
"""

from __future__ import annotations

__all__ = [
    "REJECTION_REASONS",
    "BadEncoding",
    "BadId",
    "BadRecord",
    "BinaryPayload",
    "BrokerError",
    "ConfigError",
    "EmptyBody",
    "FieldTooLong",
    "MalformedJSON",
    "NotAnObject",
    "RejectedInput",
    "TooComplex",
    "TooLarge",
    "WatchError",
    "WirewatchError",
    "WrongFieldType",
]


class WirewatchError(Exception):
    """Base class of every error raised by wirewatch."""


class ConfigError(WirewatchError):
    """A setting is missing or invalid."""


class BrokerError(WirewatchError):
    """The embedded broker could not be fetched, formatted or started."""


class WatchError(WirewatchError):
    """A watch definition is invalid."""


class RejectedInput(WirewatchError):
    """A message that cannot be processed: it is dead-lettered and the stream goes on."""

    reason: str = "rejected"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TooLarge(RejectedInput):
    reason = "too_large"


class FieldTooLong(RejectedInput):
    """A field from outside (or the message key used as the article id) over its size bound;
    the message names the field, its length and the bound."""

    reason = "field_too_long"


class TooComplex(RejectedInput):
    """HTML whose structure (too many tags or attributes, long option lists, formatting
    elements the parser would copy into every paragraph) would cost superlinear parse time."""

    reason = "too_complex"


class BadEncoding(RejectedInput):
    reason = "bad_encoding"


class BinaryPayload(RejectedInput):
    reason = "binary"


class MalformedJSON(RejectedInput):
    reason = "malformed_json"


class NotAnObject(RejectedInput):
    reason = "not_an_object"


class WrongFieldType(RejectedInput):
    reason = "wrong_field_type"


class EmptyBody(RejectedInput):
    reason = "empty_body"


class BadRecord(RejectedInput):
    reason = "bad_record"


class BadId(RejectedInput):
    reason = "bad_id"


#: Every reason code a dead letter can carry, so metrics can pre-create their label sets.
#: "webhook_*" come from the webhook sink (agents/webhook). "internal_error" is an unexpected
#: exception in our own code (a bug), still dead-lettered.
REJECTION_REASONS: tuple[str, ...] = (
    TooLarge.reason,
    FieldTooLong.reason,
    BadId.reason,
    TooComplex.reason,
    BadEncoding.reason,
    BinaryPayload.reason,
    MalformedJSON.reason,
    NotAnObject.reason,
    WrongFieldType.reason,
    EmptyBody.reason,
    BadRecord.reason,
    "webhook_refused",
    "webhook_failed",
    "internal_error",
)
