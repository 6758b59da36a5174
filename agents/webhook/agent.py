"""The webhook agent: news.deliveries -> each alerting watch's webhook.

The alert agent copies to news.deliveries the alerts of watches that have a webhook, so this
agent reads only what it must deliver (reading every alert cost the worker ~2 consumed
messages per article for nothing when no watch has a webhook, the usual case). A separate
consumer, so a slow or failing receiver delays deliveries, never alerting itself. An alert
that cannot be delivered after every retry, or whose target is refused by the guard, goes to
the dead-letter topic (stage "webhook"). The body is the alert record, or a Slack or Teams
message made from it (the watch's ``webhook_format``, ``agents/webhook/formats.py``).
"""

from __future__ import annotations

import logging

import aiohttp
from faust.types import StreamT

from agents.watch.feed import registry, watches_loaded
from agents.webhook.core import deliver, refusal_reason
from agents.webhook.formats import webhook_body
from streams.app import app, settings, stage_input
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


@app.agent(stage_input("webhook"))
async def webhook_agent(stream: StreamT) -> None:
    async with aiohttp.ClientSession() as session:
        async for event in stream.events():
            await watches_loaded()
            async with guarded("webhook", event):
                alert = decode(Alert, event.value or b"")
                watch = registry.get(alert.watch_id)
                if watch is None or not watch.webhook_url:
                    continue
                refused = await refusal_reason(watch.webhook_url, settings.webhook_allow)
                if refused:
                    METRICS.webhook_deliveries.labels("refused").inc()
                    raise WebhookRefused(refused)
                body = webhook_body(event.value or b"", alert, watch.webhook_format)
                result = await deliver(session, watch.webhook_url, body,
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
