from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.broker import EmbeddedKafka
from streams.settings import load_settings
from tests.integration.harness import Pipeline


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def kafka() -> Iterator[EmbeddedKafka]:
    """One real Apache Kafka broker for the whole session (no skip if it cannot start)."""
    broker = EmbeddedKafka.start(load_settings({}))
    yield broker
    broker.stop()


@pytest.fixture
def pipeline(kafka: EmbeddedKafka, tmp_path: Path) -> Iterator[Pipeline]:
    pipe = Pipeline(kafka, tmp_path)
    yield pipe
    pipe.stop_workers()
