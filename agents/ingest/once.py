"""Ingest without a worker: one round over every source (``wirewatch ingest --once``), and
every source's health read back from the topics (``wirewatch ingest --status``).

``--once`` takes every partition of ``news.sources`` for itself, so it must not run beside
workers that ingest the same topics (they would poll the same sources): ``group_members``
lets the CLI refuse when the workers' consumer group has members.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from agents.ingest.config import fetch_config, ingest_config
from agents.ingest.fetch import Fetcher
from agents.ingest.observe import Tally, observe_fetch
from agents.ingest.poll import Poller
from agents.ingest.runner import IngestManager, status_row
from agents.ingest.sources import Source
from agents.ingest.state import SourceState
from agents.ingest.store import (
    SyncResult,
    load_partitions,
    partition_count,
    read_all_partitions,
    sync_sources,
)
from streams.settings import Settings
from streams.topics import bootstrap_servers, topic_name

__all__ = ["group_members", "poll_once", "publish_sources", "read_status"]


class _ProducerPublisher:
    def __init__(self, producer: AIOKafkaProducer, raw_topic: str, state_topic: str) -> None:
        self._producer = producer
        self._raw = raw_topic
        self._state = state_topic

    async def publish(self, messages: list[tuple[bytes, bytes]]) -> None:
        futures = [await self._producer.send(self._raw, key=key, value=value)
                   for key, value in messages]
        await asyncio.gather(*futures)

    async def save(self, partition: int, key: bytes, value: bytes | None) -> None:
        await (await self._producer.send(self._state, key=key, value=value,
                                         partition=partition))


def _topics(settings: Settings) -> tuple[str, str, str]:
    return (topic_name(settings, "sources"), topic_name(settings, "ingest_state"),
            topic_name(settings, "raw"))


async def publish_sources(settings: Settings, sources: list[Source], *,
                          remove_others: bool = True) -> SyncResult:
    sources_topic, state_topic, _ = _topics(settings)
    return await sync_sources(bootstrap_servers(settings), sources_topic, state_topic, sources,
                              remove_others=remove_others)


async def group_members(settings: Settings) -> int:
    """Members of the workers' consumer group now (0 when none is running)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(settings))
    await admin.start()
    try:
        described = await admin.describe_consumer_groups([settings.group_id])
    finally:
        await admin.close()
    members = 0
    for response in described:
        for group in getattr(response, "groups", []):
            # (error_code, group_id, state, protocol_type, protocol, members, ...)
            if len(group) > 5 and group[1] == settings.group_id:
                members += len(group[5])
    return members


async def poll_once(settings: Settings) -> tuple[Tally, list[dict[str, Any]]]:
    """Poll every source on news.sources once; the counts, and each source's status."""
    sources_topic, state_topic, raw_topic = _topics(settings)
    bootstrap = bootstrap_servers(settings)
    tally = Tally()
    config = ingest_config(settings)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                enable_idempotence=True, max_request_size=16 * 1024 * 1024)
    await producer.start()
    try:
        async with Fetcher(fetch_config(settings), observe=observe_fetch) as fetcher:
            manager = IngestManager(
                Poller(fetcher, config, tally),
                _ProducerPublisher(producer, raw_topic, state_topic),
                functools.partial(load_partitions, bootstrap, sources_topic, state_topic),
                concurrency=settings.ingest_concurrency)
            partitions = set(range(await partition_count(bootstrap, sources_topic)))
            await manager.assign(partitions)
            await manager.poll_all_once()
            rows = manager.status(config.failing_after)
    finally:
        await producer.stop()
    return tally, rows


async def read_status(settings: Settings) -> list[dict[str, Any]]:
    """Every source on news.sources with the health its state records."""
    sources_topic, state_topic, _ = _topics(settings)
    loaded = await read_all_partitions(bootstrap_servers(settings), sources_topic, state_topic)
    failing_after = ingest_config(settings).failing_after
    now = time.time()
    return [status_row(source, loaded.states.get(url) or SourceState(url), partition, now,
                       failing_after)
            for url, (partition, source) in sorted(loaded.sources.items())]
