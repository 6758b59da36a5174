"""Ingest's configuration from the ``WIREWATCH_INGEST_*`` settings (streams/settings.py)."""

from __future__ import annotations

from importlib import metadata

from agents.ingest.fetch import FetchConfig, user_agent
from agents.ingest.poll import IngestConfig
from streams.settings import Settings

__all__ = ["fetch_config", "ingest_config", "version"]


def version() -> str:
    try:
        return metadata.version("wirewatch")
    except metadata.PackageNotFoundError:  # running from a checkout that is not installed
        return "0.1.0"


def fetch_config(settings: Settings) -> FetchConfig:
    return FetchConfig(
        user_agent=user_agent(version(), settings.ingest_contact),
        timeout=settings.ingest_timeout_seconds,
        attempts=max(1, settings.ingest_attempts),
        max_redirects=max(0, settings.ingest_max_redirects),
        host_concurrency=max(1, settings.ingest_host_concurrency),
        host_interval=max(0.0, settings.ingest_host_interval_seconds),
        robots_ttl=settings.ingest_robots_ttl_seconds,
        allow=settings.ingest_allow,
    )


def ingest_config(settings: Settings) -> IngestConfig:
    return IngestConfig(
        interval=max(settings.ingest_interval_seconds, 1.0),
        max_backoff=settings.ingest_max_backoff_seconds,
        failing_after=settings.ingest_failing_after_hours * 3600,
        max_seen=max(1, settings.ingest_max_seen),
        max_new_per_poll=max(1, settings.ingest_max_new_per_poll),
        sitemap_max_age_hours=settings.ingest_sitemap_max_age_hours,
        full_content_chars=settings.ingest_full_content_chars,
        max_feed_bytes=settings.ingest_max_feed_bytes,
        max_page_bytes=settings.ingest_max_page_bytes,
        max_message_bytes=settings.max_message_bytes,
    )
