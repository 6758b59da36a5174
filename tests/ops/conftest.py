"""Fixtures for the ops tests: the session-wide embedded Kafka broker of tests/integration.

Fixtures in tests/integration/conftest.py are not visible here, so the ``kafka`` fixture is
imported (the same code; a run of the whole suite starts one broker per conftest that
declares it, unless the fixture moves to tests/conftest.py).
"""

from __future__ import annotations

import pytest

from tests.integration.conftest import kafka

__all__ = ["kafka"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/ops/test_live" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
