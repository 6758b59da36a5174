"""Log formats: Faust's text lines by default, or one JSON object per line
(``WIREWATCH_LOG_FORMAT=json``) for log shippers.

Events about one message carry ``topic``, ``partition`` and ``offset`` (and ``stage``) as
fields, via ``log.info(..., extra=event_fields(stage, event))``; the text format shows the
same position inline as ``topic[partition]@offset``.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from faust.utils.terminal.spinners import SpinnerHandler

__all__ = ["JsonFormatter", "drop_startup_spinner", "logging_config", "EVENT_FIELDS"]

#: Extra fields copied into JSON log lines when a record carries them.
EVENT_FIELDS = ("stage", "topic", "partition", "offset", "reason", "article_id", "alert_id",
                "watch_id", "story_id")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, event fields, and exc on errors."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in EVENT_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def logging_config(log_format: str, level: str) -> dict[str, Any] | None:
    """A dictConfig for Faust's worker, or None to keep Faust's own text format."""
    if log_format != "json":
        return None
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "streams.logs.JsonFormatter"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json",
                                "stream": "ext://sys.stderr"}},
        "root": {"level": level.upper(), "handlers": ["stderr"]},
    }


def drop_startup_spinner(root: logging.Logger | None = None) -> None:
    """Undo what Faust's worker does to the root logger for its startup spinner.

    At ``--loglevel warn`` and above, the worker sets the root logger to DEBUG and adds a
    handler that advances a terminal spinner on every record. The spinner stops once the
    worker has started, but the level and the handler stay: every ``debug()`` call of Faust,
    aiokafka and ours then still builds a LogRecord (a stack walk included) that no handler
    writes. This removes the handler and puts the root logger back to the level of the
    handlers left, the one the worker was started with. No spinner handler: nothing to do.
    """
    root = root or logging.getLogger()
    spinners = [h for h in root.handlers if isinstance(h, SpinnerHandler)]
    if not spinners:
        return
    for handler in spinners:
        root.removeHandler(handler)
    root.setLevel(min((h.level for h in root.handlers), default=logging.WARNING))
