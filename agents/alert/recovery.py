"""What the alert stage sent just before a crash, read back from news.alerts.

The alert agent sends an alert, then records its watch's new state in the alert table. A
worker killed between the two (the alert reached the broker, the changelog write did not)
left no trace of the alert in its state, so the worker that reads the story again decides
the same revision and would send it a second time (the fault suite saw 1 to 3 per run). To
know what already went out, a worker reads back the alerts sent in the last
``WIREWATCH_ALERT_RECOVERY_SECONDS`` after each rebalance, before it judges anything: an
alert whose (alert id, article id) is among them is recorded in the state, not sent again.

Redelivered messages are those after the last committed offset: their alerts went out
within a commit interval or so before the crash, and a new owner takes the partitions after
the session timeout. The window (default 300 s) covers that with room for a slow restart; a
worker down for longer than the window can still repeat a revision, once.
"""

from __future__ import annotations

import time

import orjson
from aiokafka import AIOKafkaConsumer

from streams.client import topic_partitions
from streams.settings import Settings
from streams.topics import bootstrap_servers, topic_name

__all__ = ["MAX_RECENT_ALERTS", "sent_recently"]

#: Most alerts read back; beyond it the oldest of the window are not remembered.
MAX_RECENT_ALERTS = 1_000_000
#: The kinds decided once per (alert id, article id): a live revision, and the signals
#: stage's spikes and digests (whose "article id" is their period). Summaries are not.
SENT_KINDS = frozenset({"opened", "update", "surge", "spike", "digest"})


async def sent_recently(settings: Settings, *, window_seconds: float,
                        now: float | None = None) -> set[tuple[str, str]]:
    """(alert_id, article_id) of every alert of ``SENT_KINDS`` on news.alerts from the last
    ``window_seconds``."""
    since_ms = int(((time.time() if now is None else now) - window_seconds) * 1000)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(settings), group_id=None,
                                enable_auto_commit=False)
    await consumer.start()
    sent: set[tuple[str, str]] = set()
    try:
        tps = await topic_partitions(consumer, topic_name(settings, "alerts"))
        consumer.assign(tps)
        end = await consumer.end_offsets(tps)
        starts = await consumer.offsets_for_times({tp: since_ms for tp in tps})
        pending = set()
        for tp in tps:
            start = starts.get(tp)
            if start is not None and start.offset < end[tp]:
                consumer.seek(tp, start.offset)
                pending.add(tp)
        while pending and len(sent) < MAX_RECENT_ALERTS:
            batches = await consumer.getmany(*pending, timeout_ms=1000, max_records=10_000)
            if not batches:
                break  # nothing more arrives within a second: what is there has been read
            for tp, messages in batches.items():
                for msg in messages:
                    _add(sent, msg.value)
                if messages and messages[-1].offset + 1 >= end[tp]:
                    pending.discard(tp)
    finally:
        await consumer.stop()
    return sent


def _add(sent: set[tuple[str, str]], value: bytes | None) -> None:
    if not value:
        return
    try:
        alert = orjson.loads(value)
        if alert.get("kind") in SENT_KINDS:
            sent.add((str(alert["alert_id"]), str(alert["article_id"])))
    except (orjson.JSONDecodeError, KeyError, AttributeError, TypeError):
        pass  # not an alert of ours: nothing we sent
