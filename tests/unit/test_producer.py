"""The worker's Kafka producer is idempotent: a retried batch is not written twice."""

from __future__ import annotations

import asyncio


def test_the_worker_s_producer_is_idempotent() -> None:
    from streams.app import app

    async def build() -> object:
        return app.producer._new_producer()  # not started: no broker needed

    producer = asyncio.run(build())
    # aiokafka keeps a transaction manager exactly when idempotence is on.
    assert producer._txn_manager is not None  # type: ignore[attr-defined]


def test_without_the_install_faust_s_own_producer_is_not() -> None:
    # The test above can fail: Faust's own producer has no idempotence outside transactions.
    from faust.transport.drivers import aiokafka as faust_aiokafka

    from streams.app import app

    async def build() -> object:
        plain = faust_aiokafka.Producer(app.transport)
        return plain._new_producer()

    assert asyncio.run(build())._txn_manager is None  # type: ignore[attr-defined]
