"""Small Kafka clients for the CLI and tests: publish raw messages, read records back.

These use aiokafka directly (no Faust app), so publishing or following a topic starts in
milliseconds and never joins the workers' consumer group.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from agents.watches import make_watch
from agents.webhook.core import refusal_reason
from streams.errors import WatchError
from streams.records import Watch, decode, encode
from streams.settings import Settings
from streams.topics import bootstrap_servers, ensure_topics, topic_name

__all__ = ["follow", "from_the_start", "list_watches", "publish", "put_watch", "read_all", "remove_watch"]


async def publish(bootstrap: str, topic: str,
                  messages: Iterable[tuple[bytes | None, bytes | None]]) -> int:
    """Send (key, value) pairs and wait until the broker has them all; returns the count."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                enable_idempotence=True, max_request_size=16 * 1024 * 1024)
    await producer.start()
    try:
        futures = [await producer.send(topic, key=key, value=value) for key, value in messages]
        await asyncio.gather(*futures)
        return len(futures)
    finally:
        await producer.stop()


async def _stop(consumer: AIOKafkaConsumer) -> None:
    # aiokafka 0.14's group-less coordinator lets the CancelledError of its own internal
    # task escape from stop(); swallow it unless *we* are the ones being cancelled.
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str, timeout: float = 30.0
                           ) -> list[TopicPartition]:
    """Every partition of ``topic``, waiting up to ``timeout`` seconds for it to exist."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # A group-less consumer's own metadata only covers assigned topics: ask the cluster.
        cluster = await consumer._client.fetch_all_metadata()
        partitions = cluster.partitions_for_topic(topic)
        if partitions:
            return [TopicPartition(topic, p) for p in sorted(partitions)]
        await asyncio.sleep(0.2)
    raise TimeoutError(f"topic {topic} does not exist")


@contextlib.asynccontextmanager
async def from_the_start(bootstrap: str, topic: str
                         ) -> AsyncIterator[tuple[AIOKafkaConsumer, dict[TopicPartition, int]]]:
    """A group-less consumer on every partition of ``topic``, at the start of each, and the
    end offsets as they were then (how far to read to have seen everything up to now)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        tps = await topic_partitions(consumer, topic)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        yield consumer, await consumer.end_offsets(tps)
    finally:
        await _stop(consumer)


async def follow(bootstrap: str, topic: str, *, from_beginning: bool = True,
                 idle_timeout: float | None = None) -> AsyncIterator[tuple[bytes | None, bytes]]:
    """Yield (key, value) from every partition of ``topic``; stop after ``idle_timeout``
    seconds without a message, or never when it is None."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False,
                                auto_offset_reset="earliest" if from_beginning else "latest")
    await consumer.start()
    try:
        tps = await topic_partitions(consumer, topic)
        consumer.assign(tps)
        if from_beginning:
            await consumer.seek_to_beginning(*tps)
        else:
            await consumer.seek_to_end(*tps)
        last = time.monotonic()
        while idle_timeout is None or time.monotonic() - last < idle_timeout:
            batches = await consumer.getmany(timeout_ms=200)
            for messages in batches.values():
                for msg in messages:
                    last = time.monotonic()
                    yield msg.key, msg.value
    finally:
        await _stop(consumer)


async def read_all(bootstrap: str, topic: str, *, idle_timeout: float = 1.0
                   ) -> list[tuple[bytes | None, bytes]]:
    """Everything on ``topic`` now (until ``idle_timeout`` seconds pass without a message)."""
    return [item async for item in follow(bootstrap, topic, idle_timeout=idle_timeout)]


def _latest_watches(bootstrap: str, topic: str) -> dict[str, Watch]:
    async def run() -> dict[str, Watch]:
        current: dict[str, Watch] = {}
        async for key, value in follow(bootstrap, topic, idle_timeout=0.5):
            if key is None:
                continue
            if value is None:
                current.pop(key.decode(), None)
            else:
                current[key.decode()] = decode(Watch, value)
        return current

    return asyncio.run(run())


def put_watch(settings: Settings, name: str, query: str | None = None, *,
              webhook_url: str | None = None, rate_limit: int | None = None) -> Watch:
    """Validate a watch (``make_watch``, and the webhook target guard with
    ``settings.webhook_allow``) and publish it to news.watches; every worker picks it up.
    Raises ``WatchError`` before connecting to anything."""
    watch = make_watch(name, query, webhook_url=webhook_url, rate_limit=rate_limit)
    if watch.webhook_url:
        reason = asyncio.run(refusal_reason(watch.webhook_url, settings.webhook_allow))
        if reason:
            raise WatchError(f"webhook refused: {reason}")
    ensure_topics(settings, replication=settings.replication_factor)
    asyncio.run(publish(bootstrap_servers(settings), topic_name(settings, "watches"),
                        [(watch.id.encode(), encode(watch))]))
    return watch


def list_watches(settings: Settings) -> list[Watch]:
    ensure_topics(settings, replication=settings.replication_factor)
    watches = _latest_watches(bootstrap_servers(settings), topic_name(settings, "watches"))
    return sorted(watches.values(), key=lambda w: w.name.lower())


def remove_watch(settings: Settings, watch_id: str) -> None:
    """Publish a tombstone: compaction removes the watch for good."""
    asyncio.run(publish(bootstrap_servers(settings), topic_name(settings, "watches"),
                        [(watch_id.encode(), None)]))
