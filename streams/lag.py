"""Consumer lag per topic and partition, sampled from this worker's Faust consumer, and the
offsets mender (streams/offsets.py) run on the same beat.

Lag in messages is the high watermark minus the next offset to read; lag in seconds is the
age of the last message a stage finished while messages are waiting (the usual estimate of
"how far behind real time"), and 0 when the partition is caught up.
"""

from __future__ import annotations

import logging
import time

from streams.app import app
from streams.metrics import METRICS
from streams.offsets import mend_partitions, stage_input_topics
from streams.stage import LAST_READ_TIMESTAMP

__all__ = ["sample_lag"]

SAMPLE_EVERY_SECONDS = 5.0
log = logging.getLogger("wirewatch.offsets")


_reported: set[tuple[str, str]] = set()


def _forget_revoked(assigned: set[tuple[str, str]]) -> None:
    """Drop the series of partitions this worker no longer owns: a frozen last value would
    read as lag that never clears after a rebalance."""
    for labels in _reported - assigned:
        METRICS.consumer_lag_messages.remove(*labels)
        METRICS.consumer_lag_seconds.remove(*labels)
    _reported.intersection_update(assigned)


def _sample() -> None:
    consumer = app.consumer
    now = time.time()
    inputs = stage_input_topics(app.agents.values())  # changelogs are read only at recovery
    assignment = {tp for tp in consumer.assignment() if tp.topic in inputs}
    _forget_revoked({(tp.topic, str(tp.partition)) for tp in assignment})
    for tp in assignment:
        try:
            highwater = consumer.highwater(tp)
        except Exception:  # not fetched from yet: no highwater known
            continue
        if highwater is None:
            continue
        read = consumer._read_offset.get(tp)  # faust keeps the last offset read per partition
        behind = max(0, highwater - (read + 1 if read is not None else 0))
        labels = (tp.topic, str(tp.partition))
        _reported.add(labels)
        METRICS.consumer_lag_messages.labels(*labels).set(behind)
        last = LAST_READ_TIMESTAMP.get((tp.topic, tp.partition))
        seconds = max(0.0, now - last) if behind and last else 0.0
        METRICS.consumer_lag_seconds.labels(*labels).set(seconds)


@app.timer(SAMPLE_EVERY_SECONDS)
async def sample_lag() -> None:
    _sample()
    try:
        await mend_partitions(app, METRICS)
    except Exception:  # the mender must never take the worker down with it
        log.exception("offsets: mending partitions failed; trying again in %.0f s",
                      SAMPLE_EVERY_SECONDS)
