"""Paths shared by every test: the seeds and data live in ../shared, never in the repo."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.broker import EmbeddedKafka
from streams.settings import load_settings

REPO = Path(__file__).resolve().parents[1]
#: The packages the wheel holds: pyproject's [tool.setuptools.packages.find] include.
PACKAGES: tuple[str, ...] = tuple(
    pattern.rstrip("*") for pattern in
    tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    ["find"]["include"])
SHARED = REPO.parent / "shared"
SEEDS = SHARED / "seeds"
DATA = SHARED / "data"
SEED_000 = SEEDS / "000_46bcd2f114cab8ad.txt"
SEED_003 = SEEDS / "003_fa62bcc0bea388f4.txt"


@pytest.fixture(scope="session")
def seeds() -> tuple[bytes, bytes]:
    return SEED_000.read_bytes(), SEED_003.read_bytes()


@pytest.fixture(scope="session")
def kafka() -> Iterator[EmbeddedKafka]:
    """One real Apache Kafka broker for the whole session (no skip if it cannot start)."""
    broker = EmbeddedKafka.start(load_settings())
    yield broker
    broker.stop()
