"""The webhook agent: news.alerts -> each alerting watch's webhook, if it has one.

A separate consumer of the alert topic, so a slow or failing receiver delays deliveries,
never alerting itself. An alert that cannot be delivered after every retry, or whose target
is refused by the guard, goes to the dead-letter topic (stage "webhook").
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from faust.types import StreamT

from agents.watch_feed import registry, watches_loaded
from agents.webhook.core import deliver, refusal_reason
from streams.app import app, settings, topics
from streams.errors import RejectedInput
from streams.metrics import METRICS
from streams.records import Alert, decode
from streams.stage import event_fields, guarded, where

__all__ = ["webhook_agent"]

log = logging.getLogger("wirewatch.webhook")


class WebhookRefused(RejectedInput):
    reason = "webhook_refused"


class WebhookFailed(RejectedInput):
    reason = "webhook_failed"


_seen: list[Any] = [None, False]  # [the matcher last looked at, whether it had a webhook]


def _any_webhook() -> bool:
    """Whether any loaded watch has a webhook, computed once per matcher build."""
    matcher = registry.matcher
    if _seen[0] is not matcher:
        _seen[:] = [matcher, any(w.webhook_url for w in matcher.watches.values())]
    return bool(_seen[1])


@app.agent(topics["alerts"])
async def webhook_agent(stream: StreamT) -> None:
    async with aiohttp.ClientSession() as session:
        async for event in stream.events():
            await watches_loaded()
            if not _any_webhook():
                continue  # the common case: nothing to deliver, not even a decode
            async with guarded("webhook", event):
                alert = decode(Alert, event.value or b"")
                watch = registry.get(alert.watch_id)
                if watch is None or not watch.webhook_url:
                    continue
                refused = await refusal_reason(watch.webhook_url, settings.webhook_allow)
                if refused:
                    METRICS.webhook_deliveries.labels("refused").inc()
                    raise WebhookRefused(refused)
                result = await deliver(session, watch.webhook_url, event.value,
                                       timeout=settings.webhook_timeout_seconds,
                                       attempts=settings.webhook_attempts)
                if result.attempts > 1:
                    METRICS.webhook_deliveries.labels("retried").inc(result.attempts - 1)
                if not result.ok:
                    METRICS.webhook_deliveries.labels("failed").inc()
                    raise WebhookFailed(f"{watch.webhook_url}: {result.attempts} attempts, "
                                        f"last {result.detail}")
                METRICS.webhook_deliveries.labels("delivered").inc()
                log.info("alert %s delivered to watch %s's webhook at %s", alert.alert_id,
                         watch.id, where(event),
                         extra=event_fields("webhook", event, alert_id=alert.alert_id))
