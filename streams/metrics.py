"""Prometheus metrics of wirewatch, exposed by the worker's web server at ``/metrics``.

Conventions (prometheus.io/docs/practices/naming): one ``wirewatch_`` prefix, base units
(seconds), counters end in ``_total``, labels bounded (stage, outcome, reason, kind: never
ids, URLs or watch text). Label sets are created up front so every series exists at zero
and a rate() works from the first scrape.

``Metrics(registry)`` takes a registry so tests can use an isolated ``CollectorRegistry``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, disable_created_metrics

from streams.errors import REJECTION_REASONS
from streams.stages import STAGE_NAMES

# The *_created series double the exposition size and no dashboard of ours uses them.
disable_created_metrics()

__all__ = ["METRICS", "OUTCOMES", "REGISTRY", "STAGES", "Metrics"]

STAGES: tuple[str, ...] = STAGE_NAMES
#: received: read from the input topic; emitted: written to the output topic;
#: dead_lettered: sent to the dead-letter topic; dropped: deliberately not forwarded
#: (an exact duplicate, or an article that opens or updates no alert).
OUTCOMES: tuple[str, ...] = ("received", "emitted", "dead_lettered", "dropped")
DUPLICATE_KINDS: tuple[str, ...] = ("exact", "near")
MEND_KINDS: tuple[str, ...] = ("seek_back", "step_over", "resume", "kick")
ALERT_KINDS: tuple[str, ...] = ("opened", "updated", "suppressed", "summary")
WEBHOOK_OUTCOMES: tuple[str, ...] = ("delivered", "retried", "failed", "refused")
# Ingest (agents/ingest, which takes these label sets from here): a poll's outcome; what
# became of a new item; what was fetched; why a fetch or its document failed; a source's
# health (failing: for longer than WIREWATCH_INGEST_FAILING_AFTER_HOURS).
INGEST_POLL_OUTCOMES: tuple[str, ...] = ("changed", "not_modified", "failed", "aborted")
INGEST_ITEM_OUTCOMES: tuple[str, ...] = ("published", "summary_only", "dropped", "page_retry")
INGEST_FETCH_KINDS: tuple[str, ...] = ("feed", "page", "robots")
INGEST_FETCH_REASONS: tuple[str, ...] = (
    "not_found", "gone", "client_error", "rate_limited", "server_error", "timeout",
    "connection", "too_many_redirects", "too_large", "robots_disallowed", "refused",
    "not_html", "bad_response", "malformed", "not_a_feed", "bad_encoding")
INGEST_HEALTH: tuple[str, ...] = ("ok", "backing_off", "failing")

# Stage work is tens of µs to a few ms; the tail buckets catch a stuck call.
_STAGE_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                  0.1, 0.25, 1.0)
# How old news is when we see it: minutes for a live feed, days for a backfill.
_AGE_BUCKETS = (60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 12 * 3600.0, 86400.0, 3 * 86400.0,
                7 * 86400.0, 30 * 86400.0)
# A feed or page over the network: tens of ms nearby, seconds far away, the timeout at worst.
_FETCH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 60.0)
# Publish-to-alert crosses four topic hops: tens of ms at best, seconds under load.
_E2E_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class Metrics:
    """Every metric wirewatch exports, registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.articles = Counter(
            "wirewatch_articles_total", "Articles per stage and outcome.",
            ["stage", "outcome"], registry=registry)
        self.processing_seconds = Histogram(
            "wirewatch_stage_processing_seconds",
            "Time spent in a stage's own code per message.", ["stage"],
            buckets=_STAGE_BUCKETS, registry=registry)
        self.end_to_end_seconds = Histogram(
            "wirewatch_end_to_end_seconds",
            "Seconds from the raw article's publication on news.raw to its alert.",
            buckets=_E2E_BUCKETS, registry=registry)
        self.article_age_seconds = Histogram(
            "wirewatch_article_age_seconds",
            "Age of an article (now minus its published_at) when clean processes it.",
            buckets=_AGE_BUCKETS, registry=registry)
        self.duplicates = Counter(
            "wirewatch_duplicates_total", "Duplicate articles found by dedup, by kind.",
            ["kind"], registry=registry)
        self.repeated_articles = Counter(
            "wirewatch_repeated_articles_total",
            "Articles dedup had already judged (the same id again: a redelivery after a "
            "crash, or published twice), dropped without a second copy.", registry=registry)
        self.alerts = Counter(
            "wirewatch_alerts_total",
            "Alerts by kind: opened, updated, suppressed (held by a watch's rate limit), and "
            "summary (one per held burst).",
            ["kind"], registry=registry)
        self.dead_letters = Counter(
            "wirewatch_dead_letters_total", "Messages sent to the dead-letter topic.",
            ["stage", "reason"], registry=registry)
        self.webhook_deliveries = Counter(
            "wirewatch_webhook_deliveries_total", "Webhook delivery attempts by outcome.",
            ["outcome"], registry=registry)
        self.watches = Gauge(
            "wirewatch_watches", "Watches currently loaded.", registry=registry)
        self.dedup_window_articles = Gauge(
            "wirewatch_dedup_window_articles", "Articles held in the dedup window.",
            registry=registry)
        self.dedup_stories = Gauge(
            "wirewatch_dedup_stories", "Stories held in the dedup window.", registry=registry)
        self.open_alerts = Gauge(
            "wirewatch_open_alerts", "Alerts held open for updates.", registry=registry)
        self.last_processed = Gauge(
            "wirewatch_last_processed_timestamp_seconds",
            "Unix time a stage last finished a message.", ["stage"], registry=registry)
        self.consumer_lag_messages = Gauge(
            "wirewatch_consumer_lag_messages",
            "Messages on a partition this worker has not yet read (high watermark - position).",
            ["topic", "partition"], registry=registry)
        self.consumer_lag_seconds = Gauge(
            "wirewatch_consumer_lag_seconds",
            "How far behind a partition is in time: the age of the last message read while "
            "messages are waiting, else 0.", ["topic", "partition"], registry=registry)
        self.partition_mends = Counter(
            "wirewatch_partition_mends_total",
            "Partitions mended (streams/offsets.py): seek_back = read again from a message never "
            "processed; step_over = offsets that do not exist passed; resume = a partition a "
            "rebalance left paused; kick = a stalled fetch restarted.",
            ["kind"], registry=registry)
        self.stalled_partitions = Gauge(
            "wirewatch_stalled_partitions",
            "Partitions with messages waiting and none read, even after their fetch was "
            "restarted (/readyz is 503 while > 0).", registry=registry)
        self.build_info = Info("wirewatch_build", "wirewatch version.", registry=registry)
        self.ingest_polls = Counter(
            "wirewatch_ingest_polls_total",
            "Source polls by outcome: changed (parsed), not_modified (304), failed, aborted "
            "(its partition moved to another worker mid-poll).", ["outcome"], registry=registry)
        self.ingest_items = Counter(
            "wirewatch_ingest_items_total",
            "New feed and sitemap items: published (with the page or the feed's full text), "
            "summary_only (the feed's summary: page unavailable), dropped (nothing to publish), "
            "page_retry (page failed for now; tried again next poll).", ["outcome"],
            registry=registry)
        self.ingest_fetch_errors = Counter(
            "wirewatch_ingest_fetch_errors_total",
            "Failed ingest fetches (after retries) and unusable documents, by what was fetched "
            "(feed, page, robots) and why.", ["kind", "reason"], registry=registry)
        self.ingest_fetch_seconds = Histogram(
            "wirewatch_ingest_fetch_seconds",
            "Time per ingest fetch, retries and redirects included, by what was fetched.",
            ["kind"], buckets=_FETCH_BUCKETS, registry=registry)
        self.ingest_sources = Gauge(
            "wirewatch_ingest_sources",
            "Sources this worker polls, by health: ok, backing_off (failing), failing (for "
            "longer than WIREWATCH_INGEST_FAILING_AFTER_HOURS).", ["state"], registry=registry)
        self.ingest_oldest_success_age = Gauge(
            "wirewatch_ingest_oldest_success_age_seconds",
            "Seconds since the least recently successful source of this worker last succeeded "
            "(never succeeded: since its first poll); 0 with no sources.", registry=registry)
        self._precreate()

    def _precreate(self) -> None:
        for stage in STAGES:
            self.processing_seconds.labels(stage)
            self.last_processed.labels(stage)
            for outcome in OUTCOMES:
                self.articles.labels(stage, outcome)
            for reason in REJECTION_REASONS:
                self.dead_letters.labels(stage, reason)
        for kind in MEND_KINDS:
            self.partition_mends.labels(kind)
        for kind in DUPLICATE_KINDS:
            self.duplicates.labels(kind)
        for kind in ALERT_KINDS:
            self.alerts.labels(kind)
        for outcome in WEBHOOK_OUTCOMES:
            self.webhook_deliveries.labels(outcome)
        for outcome in INGEST_POLL_OUTCOMES:
            self.ingest_polls.labels(outcome)
        for outcome in INGEST_ITEM_OUTCOMES:
            self.ingest_items.labels(outcome)
        for kind in INGEST_FETCH_KINDS:
            self.ingest_fetch_seconds.labels(kind)
            for reason in INGEST_FETCH_REASONS:
                self.ingest_fetch_errors.labels(kind, reason)
        for state in INGEST_HEALTH:
            self.ingest_sources.labels(state)


REGISTRY = CollectorRegistry()
METRICS = Metrics(REGISTRY)
