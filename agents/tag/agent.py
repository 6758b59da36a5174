"""The tag stage's Faust agent: news.clean -> news.tagged (entities, keywords, watch hits)."""

from __future__ import annotations

import time

from faust.types import StreamT

from agents.tag import Tagger
from agents.watch.feed import registry, watches_loaded
from streams.app import app, stage_input, topics
from streams.records import Article, decode
from streams.stage import guarded, outcome, send

__all__ = ["tag_agent"]

tagger = Tagger()


@app.agent(stage_input("tag"))
async def tag_agent(stream: StreamT) -> None:
    async for event in stream.events():
        await watches_loaded()
        async with guarded("tag", event):
            article = tagger.tag(decode(Article, event.value or b""))
            article.watch_hits = registry.matcher.match(article)
            article.stage_times["tag"] = time.time()
            await send(topics["tagged"], article.id, article)
            outcome("tag", "emitted").inc()
