"""Ops tests: the live ones start a real worker and Prometheus (marked integration)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/ops/test_live" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
