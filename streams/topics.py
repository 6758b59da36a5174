"""Topic names, partition counts and configs, and their explicit creation.

Partitioning (see ARCHITECTURE.md): clean and tag are stateless and scale with partitions;
dedup needs one global view, so ``news.tagged`` has a single partition; alerts are keyed by
story again. ``news.watches`` is compacted: the latest definition per watch id wins and a
tombstone deletes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.settings import Settings

__all__ = ["TOPICS", "TopicSpec", "bootstrap_servers", "ensure_topics", "topic_name"]

log = logging.getLogger(__name__)

WEEK_MS = 7 * 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class TopicSpec:
    base: str  # name without the deployment prefix
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


TOPICS: dict[str, TopicSpec] = {
    "raw": TopicSpec("news.raw", 4, {"retention.ms": str(WEEK_MS)}),
    "clean": TopicSpec("news.clean", 4, {"retention.ms": str(WEEK_MS)}),
    "tagged": TopicSpec("news.tagged", 1, {"retention.ms": str(WEEK_MS)}),
    "stories": TopicSpec("news.stories", 4, {"retention.ms": str(WEEK_MS)}),
    "alerts": TopicSpec("news.alerts", 4, {"retention.ms": str(4 * WEEK_MS)}),
    # Internal: a new watch's hits among recent stories, for the alert agent. Same key and
    # partition count as news.stories, so the alert table stays co-partitioned with both.
    "backfill": TopicSpec("news.backfill", 4, {"retention.ms": str(WEEK_MS)}),
    # Internal: the alerts of watches that have a webhook, for the webhook agent, so that no
    # consumer reads every alert to find the few to deliver (most desks have no webhook).
    "deliveries": TopicSpec("news.deliveries", 4, {"retention.ms": str(WEEK_MS)}),
    # Entity trends every few minutes of event time (agents/trends), keyed by entity.
    "trends": TopicSpec("news.trends", 4, {"retention.ms": str(WEEK_MS)}),
    "watches": TopicSpec("news.watches", 1, {"cleanup.policy": "compact"}),
    "deadletter": TopicSpec("news.deadletter", 1, {"retention.ms": str(4 * WEEK_MS)}),
    # Ingest (agents/ingest): the feeds and sitemaps to follow, keyed by URL, and what each
    # one's poller remembers (seen items, validators, health), in the same partition as its
    # source. The group splits the sources by partition among the ingesting workers.
    "sources": TopicSpec("news.sources", 4, {"cleanup.policy": "compact"}),
    "ingest_state": TopicSpec("news.ingest-state", 4, {"cleanup.policy": "compact"}),
}


def topic_name(settings: Settings, key: str) -> str:
    """The full topic name of one of ``TOPICS`` under this deployment's prefix."""
    return settings.topic_prefix + TOPICS[key].base


def bootstrap_servers(settings: Settings) -> str:
    """``host:port[,host:port]`` from ``kafka://host:port[;...]``."""
    url = settings.broker_url
    hosts = [part.split("://", 1)[-1] for part in url.replace(";", ",").split(",") if part]
    return ",".join(hosts)


async def _wait_for_leaders(admin: AIOKafkaAdminClient, names: list[str],
                            timeout: float = 30.0) -> None:
    """Creation returns before partition leaders are elected; a producer that sends in that
    gap gets NotLeaderForPartition and retries. Waiting here keeps first sends clean."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        described = await admin.describe_topics(names)
        if all(t["error_code"] == 0 and t["partitions"]
               and all(p["leader"] >= 0 for p in t["partitions"]) for t in described):
            return
        await asyncio.sleep(0.1)


async def _create(settings: Settings, replication: int) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(topic_name(settings, key), spec.partitions, replication,
                     topic_configs=spec.config)
            for key, spec in TOPICS.items()
            if topic_name(settings, key) not in existing
        ]
        if wanted:
            # A second worker may have created them first.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
            await _wait_for_leaders(admin, [t.name for t in wanted])
        return [t.name for t in wanted]
    finally:
        await admin.close()


def ensure_topics(settings: Settings, *, replication: int = 1, attempts: int = 10) -> list[str]:
    """Create every missing topic with its intended partitions and config; return the new ones."""
    for attempt in range(1, attempts + 1):
        try:
            created = asyncio.run(_create(settings, replication))
            if created:
                log.info("created topics %s", ", ".join(created))
            return created
        except Exception as exc:  # broker still starting: retry with a short backoff
            if attempt == attempts:
                raise
            log.debug("topic creation attempt %d failed: %s", attempt, exc)
            asyncio.run(asyncio.sleep(min(0.5 * attempt, 3.0)))
    return []
