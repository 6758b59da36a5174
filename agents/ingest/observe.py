"""Ingest's counts as Prometheus metrics (streams/metrics.py), and a tally for the CLI."""

from __future__ import annotations

import functools
import time
from collections import Counter

from agents.ingest.fetch import Response
from agents.ingest.poll import Observer
from streams.metrics import METRICS

__all__ = ["MetricsObserver", "Tally", "observe_fetch"]


@functools.cache
def _articles(outcome: str):  # type: ignore[no-untyped-def]
    return METRICS.articles.labels("ingest", outcome)


def observe_fetch(kind: str, response: Response) -> None:
    """After each fetch (``Fetcher(observe=...)``): its time, and its failure's reason."""
    METRICS.ingest_fetch_seconds.labels(kind).observe(response.seconds)
    if not response.ok and not response.not_modified and response.reason:
        METRICS.ingest_fetch_errors.labels(kind, response.reason).inc()


class MetricsObserver(Observer):
    def poll(self, outcome: str) -> None:
        METRICS.ingest_polls.labels(outcome).inc()
        METRICS.last_processed.labels("ingest").set(time.time())

    def items(self, outcome: str, count: int = 1) -> None:
        METRICS.ingest_items.labels(outcome).inc(count)
        if outcome in ("published", "summary_only"):
            _articles("emitted").inc(count)
        elif outcome == "dropped":
            _articles("dropped").inc(count)

    def document_error(self, reason: str) -> None:
        METRICS.ingest_fetch_errors.labels("feed", reason).inc()

    def parse_seconds(self, seconds: float) -> None:
        METRICS.processing_seconds.labels("ingest").observe(seconds)


class Tally(MetricsObserver):
    """The metrics, and the same counts kept for a summary line (``wirewatch ingest``)."""

    def __init__(self) -> None:
        self.polls: Counter[str] = Counter()
        self.item_counts: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()

    def poll(self, outcome: str) -> None:
        super().poll(outcome)
        self.polls[outcome] += 1

    def items(self, outcome: str, count: int = 1) -> None:
        super().items(outcome, count)
        self.item_counts[outcome] += count

    def document_error(self, reason: str) -> None:
        super().document_error(reason)
        self.errors[reason] += 1
