"""Small Kafka clients for the CLI, stages and tests: publish messages, read records back.

These use aiokafka directly (no Faust app), so publishing or following a topic starts in
milliseconds and never joins the workers' consumer group.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

__all__ = ["follow", "from_the_start", "publish", "read_all", "topic_partitions"]


async def publish(bootstrap: str, topic: str,
                  messages: Iterable[tuple[bytes | None, bytes | None]], *,
                  timestamp_ms: int | None = None) -> int:
    """Send (key, value) pairs and wait until the broker has them all; returns the count.
    ``timestamp_ms``: the records' time (a replay of old news), instead of now."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                enable_idempotence=True, max_request_size=16 * 1024 * 1024)
    await producer.start()
    try:
        futures = [await producer.send(topic, key=key, value=value, timestamp_ms=timestamp_ms)
                   for key, value in messages]
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
