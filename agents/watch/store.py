"""The watch definitions on news.watches, from outside a worker: add, list, remove.

What ``wirewatch watch`` and the tests use. A worker follows the same compacted topic
(``feed.py``); ``api.py`` is the HTTP way to change it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agents.watch.definitions import make_watch
from agents.webhook.core import refusal_reason
from streams.client import follow, publish
from streams.errors import WatchError
from streams.records import Watch, decode, encode
from streams.settings import Settings
from streams.topics import bootstrap_servers, ensure_topics, topic_name

__all__ = ["list_watches", "put_watch", "remove_watch"]


def _latest_watches(bootstrap: str, topic: str) -> dict[str, Watch]:
    async def run() -> dict[str, Watch]:
        current: dict[str, Watch] = {}
        async for key, value in follow(bootstrap, topic, idle_timeout=0.5):
            if key is None:
                continue
            if value is None:
                current.pop(key.decode(), None)
            else:
                current[key.decode()] = decode(Watch, value)
        return current

    return asyncio.run(run())


def put_watch(settings: Settings, name: str, query: str | None = None, *,
              webhook_url: str | None = None, rate_limit: int | None = None,
              **options: Any) -> Watch:
    """Validate a watch (``make_watch``, and the webhook target guard with
    ``settings.webhook_allow``) and publish it to news.watches; every worker picks it up.
    ``options``: its signal settings (``WATCH_OPTIONS``). Raises ``WatchError`` before
    connecting to anything."""
    watch = make_watch(name, query, webhook_url=webhook_url, rate_limit=rate_limit, **options)
    if watch.webhook_url:
        reason = asyncio.run(refusal_reason(watch.webhook_url, settings.webhook_allow))
        if reason:
            raise WatchError(f"webhook refused: {reason}")
    ensure_topics(settings, replication=settings.replication_factor)
    asyncio.run(publish(bootstrap_servers(settings), topic_name(settings, "watches"),
                        [(watch.id.encode(), encode(watch))]))
    return watch


def list_watches(settings: Settings) -> list[Watch]:
    ensure_topics(settings, replication=settings.replication_factor)
    watches = _latest_watches(bootstrap_servers(settings), topic_name(settings, "watches"))
    return sorted(watches.values(), key=lambda w: w.name.lower())


def remove_watch(settings: Settings, watch_id: str) -> None:
    """Publish a tombstone: compaction removes the watch for good."""
    asyncio.run(publish(bootstrap_servers(settings), topic_name(settings, "watches"),
                        [(watch_id.encode(), None)]))
