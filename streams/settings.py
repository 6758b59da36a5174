"""Settings, read from the environment. Every variable carries the ``WIREWATCH_`` prefix.

Faust reads some unprefixed variables itself (BROKER_URL, APP_STORE, WEB_PORT...) and they
would silently override code, so wirewatch never uses those names.

| variable | default | meaning |
|---|---|---|
| WIREWATCH_BROKER_URL | (empty) | ``kafka://host:port``; empty starts the embedded Apache Kafka broker |
| WIREWATCH_TOPIC_PREFIX | (empty) | prepended to every topic name, e.g. ``prod.`` |
| WIREWATCH_APP_ID | wirewatch | consumer group and changelog names, after the topic prefix |
| WIREWATCH_STORE | memory:// | table store; ``rocksdb://`` in production |
| WIREWATCH_WEB_HOST / _PORT | 127.0.0.1 / 6066 | worker web server (/metrics) |
| WIREWATCH_WATCHES_FILE | (empty) | watches loaded at start-up, one ``name: query`` per line |
| WIREWATCH_MAX_MESSAGE_BYTES | 1048576 | raw messages above this are dead-lettered |
| WIREWATCH_MAX_BODY_CHARS | 200000 | cleaned bodies are cut to this many characters |
| WIREWATCH_DEDUP_WINDOW_HOURS | 72 | how long dedup remembers an article |
| WIREWATCH_DEDUP_MAX_ARTICLES | 50000 | size cap of the dedup window |
| WIREWATCH_DEDUP_BATCH_MAX | 256 | most articles dedup prepares at once (numpy over the batch) |
| WIREWATCH_DEDUP_BATCH_WAIT_MS | 2 | longest dedup waits to fill a batch: the latency it may add |
| WIREWATCH_ALERT_WINDOW_HOURS | 72 | how long an alert stays open for updates |
| WIREWATCH_ALERT_MAX_OPEN | 100000 | size cap of open alerts |
| WIREWATCH_ALERT_RECOVERY_SECONDS | 300 | alerts sent this recently are read back after a rebalance |
| WIREWATCH_SIGNALS_IDLE_SECONDS | 600 | an idle partition closes due digests by the wall clock |
| WIREWATCH_PRODUCER_LINGER_MS | 2 | producer batching delay; trades latency for throughput |
| WIREWATCH_WATCH_PLURALS | 0 | 1: every watch term also matches its simple English plural |
| WIREWATCH_API_TOKEN | (empty) | bearer token for the worker's HTTP write calls; empty disables them |
| WIREWATCH_ALERT_RATE_LIMIT | 20 | alerts per watch per window before a burst is folded into a summary |
| WIREWATCH_ALERT_RATE_WINDOW_SECONDS | 300 | the rate limit's window |
| WIREWATCH_WEBHOOK_TIMEOUT_SECONDS | 5 | per webhook POST |
| WIREWATCH_WEBHOOK_ATTEMPTS | 4 | POSTs before an alert is dead-lettered (backoff 0.5 s, 1 s, 2 s...) |
| WIREWATCH_WEBHOOK_ALLOW | (empty) | hosts or CIDRs (comma list) webhooks may reach though private |
| WIREWATCH_SESSION_TIMEOUT_SECONDS | 30 | a crashed worker's partitions move to the others after this |
| WIREWATCH_COMMIT_INTERVAL_SECONDS | 2.8 | how often consumed offsets are committed |
| WIREWATCH_REPLICATION_FACTOR | 1 | replication of the topics wirewatch creates (3 in production) |
| WIREWATCH_LOG_LEVEL | info | |
| WIREWATCH_LOG_FORMAT | text | ``text`` or ``json`` |
| WIREWATCH_KAFKA_VERSION | 3.9.1 | Apache Kafka version of the embedded broker |
| WIREWATCH_CACHE_DIR | ~/.cache/wirewatch | embedded broker jars and data |
| WIREWATCH_INGEST_SOURCES_FILE | (empty) | sources a worker publishes to news.sources at start |
| WIREWATCH_INGEST_INTERVAL_SECONDS | 600 | default seconds between polls of a source |
| WIREWATCH_INGEST_MIN_INTERVAL_SECONDS | 60 | the shortest ``interval=`` a sources file may ask |
| WIREWATCH_INGEST_CONCURRENCY | 8 | sources one worker polls at once |
| WIREWATCH_INGEST_HOST_CONCURRENCY | 2 | requests at once to one host |
| WIREWATCH_INGEST_HOST_INTERVAL_SECONDS | 1 | least time between requests to a host (or its Crawl-delay) |
| WIREWATCH_INGEST_TIMEOUT_SECONDS | 20 | per request, body included |
| WIREWATCH_INGEST_ATTEMPTS | 3 | tries of a request on timeouts, connection errors, 5xx, 429 |
| WIREWATCH_INGEST_MAX_REDIRECTS | 5 | redirects followed per request |
| WIREWATCH_INGEST_MAX_FEED_BYTES | 10485760 | larger feeds and sitemaps are refused (reading stops) |
| WIREWATCH_INGEST_MAX_PAGE_BYTES | 5242880 | likewise for article pages |
| WIREWATCH_INGEST_ROBOTS_TTL_SECONDS | 3600 | how long a robots.txt is kept |
| WIREWATCH_INGEST_MAX_BACKOFF_SECONDS | 21600 | longest wait between polls of a failing source |
| WIREWATCH_INGEST_FAILING_AFTER_HOURS | 24 | a source failing this long is reported (metric, log, status) |
| WIREWATCH_INGEST_MAX_SEEN | 10000 | item ids remembered per source (oldest forgotten first) |
| WIREWATCH_INGEST_MAX_NEW_PER_POLL | 500 | new items published per source per poll (the rest next poll) |
| WIREWATCH_INGEST_SITEMAP_MAX_AGE_HOURS | 48 | older sitemap items are skipped (``max_age=`` overrides) |
| WIREWATCH_INGEST_FULL_CONTENT_CHARS | 2000 | feed content this long is the article: no page fetch |
| WIREWATCH_INGEST_ALLOW | (empty) | hosts or CIDRs (comma list) ingest may fetch from though not public |
| WIREWATCH_INGEST_CONTACT | (empty) | URL or e-mail in the User-Agent: ``wirewatch/<version> (+contact)`` |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from streams.errors import ConfigError

__all__ = ["PREFIX", "Settings", "faust_options", "load_settings", "read_environ",
           "worker_datadir"]

PREFIX = "WIREWATCH_"


@dataclass(frozen=True, slots=True)
class Settings:
    broker_url: str = ""
    topic_prefix: str = ""
    app_id: str = "wirewatch"
    store: str = "memory://"
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    watches_file: str = ""
    max_message_bytes: int = 1_048_576
    max_body_chars: int = 200_000
    dedup_window_hours: float = 72.0
    dedup_max_articles: int = 50_000
    dedup_batch_max: int = 256
    dedup_batch_wait_ms: float = 2.0
    alert_window_hours: float = 72.0
    alert_max_open: int = 100_000
    alert_recovery_seconds: float = 300.0
    signals_idle_seconds: float = 600.0
    producer_linger_ms: int = 2
    watch_plurals: int = 0
    api_token: str = ""
    alert_rate_limit: int = 20
    alert_rate_window_seconds: float = 300.0
    webhook_timeout_seconds: float = 5.0
    webhook_attempts: int = 4
    webhook_allow: str = ""
    session_timeout_seconds: float = 30.0
    commit_interval_seconds: float = 2.8
    replication_factor: int = 1
    log_level: str = "info"
    log_format: str = "text"
    kafka_version: str = "3.9.1"
    cache_dir: str = str(Path.home() / ".cache" / "wirewatch")
    # Ingest (agents/ingest): feeds and sitemaps to news.raw.
    ingest_sources_file: str = ""
    ingest_interval_seconds: float = 600.0
    ingest_min_interval_seconds: float = 60.0
    ingest_concurrency: int = 8
    ingest_host_concurrency: int = 2
    ingest_host_interval_seconds: float = 1.0
    ingest_timeout_seconds: float = 20.0
    ingest_attempts: int = 3
    ingest_max_redirects: int = 5
    ingest_max_feed_bytes: int = 10_485_760
    ingest_max_page_bytes: int = 5_242_880
    ingest_robots_ttl_seconds: float = 3600.0
    ingest_max_backoff_seconds: float = 21_600.0
    ingest_failing_after_hours: float = 24.0
    ingest_max_seen: int = 10_000
    ingest_max_new_per_poll: int = 500
    ingest_sitemap_max_age_hours: float = 48.0
    ingest_full_content_chars: int = 2_000
    ingest_allow: str = ""
    ingest_contact: str = ""

    @property
    def group_id(self) -> str:
        """Faust's app id: the consumer group, and the first part of every topic Faust makes
        for itself (table changelogs, the leader topic). It carries the topic prefix, so two
        deployments on one broker share no group and no state (before, a second deployment
        read the first one's dedup changelog and dropped its articles as duplicates)."""
        return self.topic_prefix + self.app_id

    @property
    def embedded(self) -> bool:
        """True when no broker is configured and the embedded one must be started."""
        return not self.broker_url


def _convert(variable: str, raw: str, kind: type) -> object:
    try:
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
    except ValueError:
        raise ConfigError(f"{variable}={raw!r} is not a valid {kind.__name__}") from None
    return raw


def read_environ(cls: type, prefix: str, environ: Mapping[str, str]) -> dict[str, object]:
    """The fields of the settings dataclass ``cls`` that ``environ`` sets (as
    ``prefix + NAME``, empty meaning unset), converted to the type of each field's default."""
    defaults = cls()
    values: dict[str, object] = {}
    for f in fields(cls):
        variable = prefix + f.name.upper()
        raw = environ.get(variable)
        if raw is not None and raw != "":
            values[f.name] = _convert(variable, raw, type(getattr(defaults, f.name)))
    return values


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build ``Settings`` from ``WIREWATCH_*`` variables (``os.environ`` by default)."""
    env = os.environ if environ is None else environ
    settings = Settings(**read_environ(Settings, PREFIX, env))  # type: ignore[arg-type]
    if settings.log_format not in ("text", "json"):
        raise ConfigError(f"{PREFIX}LOG_FORMAT must be text or json, not {settings.log_format!r}")
    if settings.max_message_bytes <= 0:
        raise ConfigError(f"{PREFIX}MAX_MESSAGE_BYTES must be positive")
    return settings


def worker_datadir(settings: Settings, data_name: str) -> Path:
    """The worker's table-store folder, one per ``data_name`` (the web port): two workers on
    one host must not share a RocksDB directory. Its parent is created here because Faust
    makes only the last level (``datadir.mkdir()`` without ``parents=True``), so a first run
    on a machine with no ``~/.cache`` would die at start."""
    parent = Path(settings.cache_dir) / "worker-data"
    parent.mkdir(parents=True, exist_ok=True)
    return parent / data_name


def faust_options(settings: Settings, *, data_name: str) -> dict[str, Any]:
    """``faust.App`` keyword options from our settings, shared by the pipeline's app and the
    benchmark's pass-through ceiling, so both run with exactly the same client settings."""
    return {
        # With no broker configured the CLI starts the embedded one and sets the URL first;
        # this placeholder only matters to commands that never connect.
        "broker": settings.broker_url or "kafka://127.0.0.1:9092",
        "store": settings.store,
        "datadir": str(worker_datadir(settings, data_name)),
        "autodiscover": False,
        "web_host": settings.web_host,
        "web_bind": settings.web_host,
        "web_port": settings.web_port,
        "topic_replication_factor": settings.replication_factor,
        "topic_partitions": 1,
        "consumer_auto_offset_reset": "earliest",
        "producer_linger": settings.producer_linger_ms / 1000,
        "broker_session_timeout": settings.session_timeout_seconds,
        "broker_heartbeat_interval": min(3.0, settings.session_timeout_seconds / 3),
        "broker_commit_interval": settings.commit_interval_seconds,
        # Dead letters carry the original payload, which may be large.
        "producer_max_request_size": 8 * 1024 * 1024,
    }
