"""Log formats: Faust's text lines by default, or one JSON object per line
(``WIREWATCH_LOG_FORMAT=json``) for log shippers.

Events about one message carry ``topic``, ``partition`` and ``offset`` (and ``stage``) as
fields, via ``log.info(..., extra=event_fields(stage, event))``; the text format shows the
same position inline as ``topic[partition]@offset``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from faust.utils.terminal.spinners import SpinnerHandler

__all__ = ["EVENT_FIELDS", "JsonFormatter", "RepeatFilter", "drop_startup_spinner",
           "install_repeat_filter", "logging_config"]

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


@dataclass(slots=True)
class _Window:
    start: float
    passed: int = 1
    dropped: int = 0


class RepeatFilter(logging.Filter):
    """Lets at most ``burst`` warnings or errors of one kind (logger, level, message
    template) through per ``window`` seconds and drops the rest; the first one let through
    in the next window says how many were dropped. While the broker is down, aiokafka and
    Faust log the same failure ~150 times a second: that buries everything else and fills
    disks. Lines below WARNING pass untouched (they are per event and off by default)."""

    MAX_KINDS = 1000  # templates are few; formatted messages from libraries are not

    def __init__(self, *, burst: int = 20, window: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst, self.window, self.clock = burst, window, clock
        self._kinds: dict[tuple[str, int, str], _Window] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        verdict: bool | None = getattr(record, "_repeat_verdict", None)
        if verdict is None:  # one verdict per record, however many handlers it reaches
            verdict = record._repeat_verdict = self._decide(record)  # type: ignore[attr-defined]
        return verdict

    def _decide(self, record: logging.LogRecord) -> bool:
        kind = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        seen = self._kinds.get(kind)
        if seen is None or now - seen.start >= self.window:
            if seen is None and len(self._kinds) >= self.MAX_KINDS:
                del self._kinds[next(iter(self._kinds))]  # the oldest kind
            self._kinds[kind] = _Window(now)
            if seen is not None and seen.dropped:
                record.msg = (f"{record.msg} [and {seen.dropped} more like it in the "
                              f"{self.window:.0f} s before, not logged]")
            return True
        if seen.passed < self.burst:
            seen.passed += 1
            return True
        seen.dropped += 1
        return False


def install_repeat_filter(root: logging.Logger | None = None) -> None:
    """Put one ``RepeatFilter`` on every handler of the root logger (Faust's own text
    handlers included: they exist only once the worker has set up logging)."""
    root = root or logging.getLogger()
    repeat = RepeatFilter()
    for handler in root.handlers:
        if not any(isinstance(f, RepeatFilter) for f in handler.filters):
            handler.addFilter(repeat)


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
