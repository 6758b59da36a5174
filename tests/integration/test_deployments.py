"""Two deployments on one broker (different WIREWATCH_TOPIC_PREFIX, same WIREWATCH_APP_ID)
share nothing: no consumer group, no state changelog, no internal topic."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import orjson
from aiokafka.admin import AIOKafkaAdminClient

from streams.broker import EmbeddedKafka
from tests.conftest import SEED_000
from tests.integration.harness import Pipeline


async def _topics(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


def _article(article_id: str) -> bytes:
    title, body = SEED_000.read_text().split("\n", 1)
    return orjson.dumps({"id": article_id, "source": "Test Wire", "title": title, "text": body})


def test_a_second_deployment_does_not_read_the_first_one_s_state(kafka: EmbeddedKafka,
                                                                  tmp_path: Path) -> None:
    shared_app_id = f"wirewatch-shared-{uuid.uuid4().hex[:8]}"
    first = Pipeline(kafka, tmp_path, env_extra={"WIREWATCH_APP_ID": shared_app_id})
    second = Pipeline(kafka, tmp_path, env_extra={"WIREWATCH_APP_ID": shared_app_id})
    try:
        first.start_worker()
        first.send("raw", _article("first-deployment"))
        first.wait_for("stories", lambda records: len(records) == 1)
        first.stop_workers()

        # The same text in the second deployment is new there, not an exact duplicate of the
        # first deployment's copy.
        second.start_worker()
        second.send("raw", _article("second-deployment"))
        second.wait_for("stories", lambda records: len(records) == 1)
        assert second.metric("wirewatch_duplicates_total", {"kind": "exact"}) == 0

        # Every topic Faust made for either deployment (changelogs, leader topic) carries
        # that deployment's prefix.
        made = {t for t in asyncio.run(_topics(kafka.bootstrap)) if shared_app_id in t}
        assert made, "no internal topics found"
        assert all(t.startswith((first.prefix, second.prefix)) for t in made), sorted(made)
        assert any(t.startswith(first.prefix) for t in made)
        assert any(t.startswith(second.prefix) for t in made)
    finally:
        first.stop_workers()
        second.stop_workers()
