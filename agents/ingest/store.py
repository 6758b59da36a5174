"""The ingest topics from outside a poller: publish a source list, read sources and state.

- ``news.sources`` (compacted, keyed by source URL): one ``Source`` per URL, or a tombstone.
  Records are written to the partition ``partition_for(url)`` (Kafka's own murmur2 rule,
  the one aiokafka and the Java client use), so any producer of ours agrees on it.
- ``news.ingest-state`` (compacted, keyed by source URL): one ``SourceState`` per source, in
  the same partition as the source's record: a process that owns partition P of
  ``news.sources`` reads partition P of both topics and has everything for its sources.

``sync_sources`` makes the topic hold exactly a sources file's list (new and changed
sources written, the others removed with a tombstone), ``load_partitions`` reads what one
process needs when it is given partitions, ``read_status`` joins both topics for
``wirewatch ingest --status``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.partitioner import murmur2

from agents.ingest.sources import Source, source_from_json
from agents.ingest.state import SourceState
from streams.client import topic_partitions
from streams.errors import BadRecord

__all__ = ["Loaded", "SyncResult", "load_partitions", "partition_count", "partition_for",
           "read_all_partitions", "sync_sources"]

log = logging.getLogger("wirewatch.ingest")


def partition_for(key: bytes, partitions: int) -> int:
    """Kafka's default partition of ``key`` (murmur2, as aiokafka and the Java client)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@dataclass(slots=True)
class Loaded:
    sources: dict[str, tuple[int, Source]] = field(default_factory=dict)  # url -> partition
    states: dict[str, SourceState] = field(default_factory=dict)
    next_offsets: dict[int, int] = field(default_factory=dict)  # news.sources, per partition
    bad: int = 0


async def _read_partitions(bootstrap: str, topic: str, partitions: set[int] | None,
                           timeout: float = 60.0
                           ) -> tuple[list[tuple[int, int, bytes | None, bytes | None]],
                                      dict[int, int]]:
    """Every record of ``partitions`` of ``topic`` (all when None) up to their end now:
    (partition, offset, key, value), and the end offsets."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        every = await topic_partitions(consumer, topic)
        tps = [tp for tp in every if partitions is None or tp.partition in partitions]
        if not tps:
            return [], {}
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        records: list[tuple[int, int, bytes | None, bytes | None]] = []
        deadline = time.monotonic() + timeout
        while True:
            waiting = [tp for tp in tps if await consumer.position(tp) < end[tp]]
            if not waiting:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} took over {timeout:.0f} s")
            batches = await consumer.getmany(*waiting, timeout_ms=500)
            for tp, messages in batches.items():
                records.extend((tp.partition, m.offset, m.key, m.value) for m in messages
                               if m.offset < end[tp])
        return records, {tp.partition: end[tp] for tp in tps}
    finally:
        try:
            await consumer.stop()
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise


def _latest_sources(records: list[tuple[int, int, bytes | None, bytes | None]]
                    ) -> tuple[dict[str, tuple[int, Source]], int]:
    current: dict[str, tuple[int, Source]] = {}
    bad = 0
    for partition, offset, key, value in records:
        if key is None:
            bad += 1
            continue
        url = key.decode("utf-8", "replace")
        if value is None:
            current.pop(url, None)
            continue
        try:
            source = source_from_json(value)
        except BadRecord as exc:
            log.warning("ingest: source record at %d@%d ignored: %s", partition, offset, exc)
            bad += 1
            continue
        if source.url != url:
            log.warning("ingest: source record at %d@%d has key %s but url %s; ignored",
                        partition, offset, url[:200], source.url[:200])
            bad += 1
            continue
        current[url] = (partition, source)
    return current, bad


def _latest_states(records: list[tuple[int, int, bytes | None, bytes | None]]
                   ) -> dict[str, SourceState]:
    states: dict[str, SourceState] = {}
    for partition, offset, key, value in records:
        if key is None:
            continue
        url = key.decode("utf-8", "replace")
        if value is None:
            states.pop(url, None)
            continue
        try:
            states[url] = SourceState.from_json(value)
        except BadRecord as exc:
            log.warning("ingest: state record at %d@%d ignored: %s", partition, offset, exc)
    return states


async def load_partitions(bootstrap: str, sources_topic: str, state_topic: str,
                          partitions: set[int] | None) -> Loaded:
    """The sources and states of ``partitions`` (None: all), read from the start of both
    topics."""
    (source_records, ends), (state_records, _) = await asyncio.gather(
        _read_partitions(bootstrap, sources_topic, partitions),
        _read_partitions(bootstrap, state_topic, partitions))
    sources, bad = _latest_sources(source_records)
    states = _latest_states(state_records)
    return Loaded(sources=sources, bad=bad, next_offsets=ends,
                  states={url: states[url] for url in sources if url in states})


async def read_all_partitions(bootstrap: str, sources_topic: str, state_topic: str
                              ) -> Loaded:
    """Every source and its state (for ``--status`` and ``--once``)."""
    return await load_partitions(bootstrap, sources_topic, state_topic, None)


@dataclass(frozen=True, slots=True)
class SyncResult:
    added: int
    changed: int
    removed: int
    unchanged: int


async def sync_sources(bootstrap: str, sources_topic: str, state_topic: str,
                       sources: list[Source], *, remove_others: bool = True) -> SyncResult:
    """Make news.sources list ``sources``: write the new and changed ones, and (with
    ``remove_others``) a tombstone for every other source, and for its state."""
    records, _ = await _read_partitions(bootstrap, sources_topic, None)
    current, _ = _latest_sources(records)
    partitions = await partition_count(bootstrap, sources_topic)
    wanted = {s.url: s for s in sources}
    writes: list[tuple[str, bytes, bytes | None, int]] = []
    added = changed = unchanged = 0
    for url, source in wanted.items():
        before = current.get(url)
        if before is None:
            added += 1
        elif before[1] == source:
            unchanged += 1
            continue
        else:
            changed += 1
        writes.append((sources_topic, source.key(), source.to_json(),
                       partition_for(source.key(), partitions)))
    removed = 0
    if remove_others:
        for url, (partition, _source) in current.items():
            if url not in wanted:
                removed += 1
                key = url.encode("utf-8")
                writes.append((sources_topic, key, None, partition))
                writes.append((state_topic, key, None, partition))
    if writes:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                    enable_idempotence=True)
        await producer.start()
        try:
            futures = [await producer.send(topic, key=key, value=value, partition=partition)
                       for topic, key, value, partition in writes]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()
    return SyncResult(added, changed, removed, unchanged)


async def partition_count(bootstrap: str, topic: str) -> int:
    """How many partitions ``topic`` has (waiting for it to exist)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        return len(await topic_partitions(consumer, topic))
    finally:
        await consumer.stop()
