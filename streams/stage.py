"""What every stage's agent does around its pure core: count, time, and dead-letter.

    async for event in stream.events():
        async with guarded("clean", event):
            article = clean(event.value, ...)
            await send(topics["clean"], article.id, article)

A ``RejectedInput`` raised inside the block becomes a dead letter with its reason; any other
exception is a bug in our code, logged with its traceback and dead-lettered as
``internal_error``. Either way the agent goes on with the next message: one bad article
must never stop the stream.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import time
from types import TracebackType
from typing import Any

from faust.types import EventT, TopicT
from prometheus_client import Counter, Gauge, Histogram

from streams.app import app, topics
from streams.errors import RejectedInput
from streams.logs import drop_startup_spinner, install_repeat_filter
from streams.metrics import METRICS
from streams.records import DeadLetter, encode

__all__ = ["dead_letter", "guarded", "outcome", "send", "where"]

log = logging.getLogger("wirewatch.stage")

#: (topic, partition) -> timestamp of the last message a stage finished, for lag in seconds.
LAST_READ_TIMESTAMP: dict[tuple[str, int], float] = {}

#: Dead letters keep at most this much of the original payload (the size is recorded).
MAX_DEAD_LETTER_PAYLOAD = 4 * 1024 * 1024


def where(event: EventT) -> str:
    """``topic[partition]@offset`` of an event, for log lines."""
    msg = event.message
    return f"{msg.topic}[{msg.partition}]@{msg.offset}"


def event_fields(stage: str, event: EventT, **more: Any) -> dict[str, Any]:
    """Structured log fields of an event (``extra=``): JSON logs show them as keys."""
    msg = event.message
    return {"stage": stage, "topic": msg.topic, "partition": msg.partition,
            "offset": msg.offset, **more}


async def dead_letter(stage: str, event: EventT, reason: str, error: str) -> None:
    """Send the event's original message to the dead-letter topic, with why."""
    msg = event.message
    payload = msg.value if isinstance(msg.value, bytes) else bytes(str(msg.value), "utf-8")
    key = msg.key.decode("utf-8", "replace") if isinstance(msg.key, bytes) else msg.key
    letter = DeadLetter(
        stage=stage, reason=reason, error=error[:2000], topic=msg.topic,
        partition=msg.partition, offset=msg.offset, key=key,
        payload_b64=base64.b64encode(payload[:MAX_DEAD_LETTER_PAYLOAD]).decode("ascii"),
        payload_size=len(payload), failed_at=time.time())
    await topics["deadletter"].send(key=msg.key, value=encode(letter))
    METRICS.dead_letters.labels(stage, reason).inc()
    METRICS.articles.labels(stage, "dead_lettered").inc()
    log.warning("%s: dead letter %s at %s: %s", stage, reason, where(event), error[:300],
                extra=event_fields(stage, event, reason=reason))


@app.task
async def _quiet_debug_logs() -> None:
    """Once started, debug() calls must cost nothing below the configured level (see
    ``drop_startup_spinner``), and repeated warnings are rate-limited (``RepeatFilter``):
    app tasks start after the worker has set up logging."""
    drop_startup_spinner()
    install_repeat_filter()


async def send(topic: TopicT, key: str, record: Any) -> None:
    await topic.send(key=key.encode("utf-8"), value=encode(record))


@functools.cache
def outcome(stage: str, name: str) -> Counter:
    """The ``wirewatch_articles_total`` series of a stage and outcome, looked up once: a
    ``labels()`` call takes a lock and builds its key, several µs per message and series."""
    return METRICS.articles.labels(stage, name)


@functools.cache
def _timing(stage: str) -> tuple[Histogram, Gauge]:
    return METRICS.processing_seconds.labels(stage), METRICS.last_processed.labels(stage)


class guarded:
    """Count, time and protect the handling of one event (see the module docstring)."""

    __slots__ = ("event", "stage", "started")

    def __init__(self, stage: str, event: EventT) -> None:
        self.stage = stage
        self.event = event
        self.started = 0.0

    async def __aenter__(self) -> guarded:
        self.started = time.perf_counter()
        outcome(self.stage, "received").inc()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> bool:
        seconds, last = _timing(self.stage)
        seconds.observe(time.perf_counter() - self.started)
        last.set(time.time())
        msg = self.event.message
        LAST_READ_TIMESTAMP[(msg.topic, msg.partition)] = msg.timestamp
        if exc is None:
            return False
        if isinstance(exc, RejectedInput):
            await dead_letter(self.stage, self.event, exc.reason, exc.message)
            return True
        if isinstance(exc, Exception) and not isinstance(exc, asyncio.CancelledError):
            log.exception("%s: unexpected error at %s", self.stage, where(self.event),
                          extra=event_fields(self.stage, self.event))
            await dead_letter(self.stage, self.event, "internal_error",
                              f"{type(exc).__name__}: {exc}")
            return True
        return False  # cancellation and KeyboardInterrupt propagate: the worker is stopping
