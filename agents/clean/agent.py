"""The clean stage's Faust agent: news.raw (bytes) -> news.clean (Article)."""

from __future__ import annotations

import time

from faust.types import StreamT

from agents.clean.core import clean
from streams.app import app, settings, stage_input, topics
from streams.metrics import METRICS
from streams.stage import guarded, outcome, send

__all__ = ["clean_agent"]


@app.agent(stage_input("clean"))
async def clean_agent(stream: StreamT) -> None:
    async for event in stream.events():
        async with guarded("clean", event):
            msg = event.message
            article = clean(event.value or b"", key=msg.key, received_at=msg.timestamp,
                            max_bytes=settings.max_message_bytes,
                            max_body_chars=settings.max_body_chars)
            article.stage_times["clean"] = now = time.time()
            published = article.published_timestamp()
            if published is not None and published <= now:
                METRICS.article_age_seconds.observe(now - published)
            await send(topics["clean"], article.id, article)
            outcome("clean", "emitted").inc()
