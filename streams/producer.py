"""Faust's producer, made idempotent.

Faust (0.15) turns on the idempotent producer only inside transactions
(``Producer._settings_extra``), which we do not use (see ../shared/ARCHITECTURE.md). Without
it, a batch that the broker wrote but whose acknowledgement was lost (a broker killed or
restarted mid-request) is retried and written twice: the fault suite saw the same alert
revision twice, at the same timestamp, after a broker SIGKILL. With it the broker drops the
retried copy by producer id and sequence number. Costs nothing measurable: acks were
already ``all``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

__all__ = ["install_idempotent_producer"]


class IdempotentProducer(faust_aiokafka.Producer):
    def _settings_extra(self) -> Mapping[str, Any]:
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}


def install_idempotent_producer() -> None:
    """Make every Faust app of this process create ``IdempotentProducer``s (call before the
    app starts its producer)."""
    faust_aiokafka.Transport.Producer = IdempotentProducer
