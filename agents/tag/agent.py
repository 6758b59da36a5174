"""The tag stage's Faust agent: news.clean -> news.tagged (entities, keywords, watch hits)."""

from __future__ import annotations

import time

from faust.types import StreamT

from agents.tag import Tagger
from agents.watch_feed import ready, registry
from streams.app import app, topics
from streams.metrics import METRICS
from streams.records import Article, decode
from streams.stage import guarded, send

__all__ = ["tag_agent"]

tagger = Tagger()


@app.agent(topics["clean"])
async def tag_agent(stream: StreamT) -> None:
    await ready.wait()  # never judge an article against a half-loaded watch list
    async for event in stream.events():
        async with guarded("tag", event):
            article = tagger.tag(decode(Article, event.value or b""))
            article.watch_hits = registry.matcher.match(article)
            article.stage_times["tag"] = time.time()
            await send(topics["tagged"], article.id, article)
            METRICS.articles.labels("tag", "emitted").inc()
