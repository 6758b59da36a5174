"""The ceiling of the benchmark: a Faust pass-through with the pipeline's shape and settings.

Four agents that only decode and re-send, over as many topic hops as the pipeline and with
the same partition counts (raw 4 -> h1 4 -> h2 1 -> h3 4 -> out 4, like news.raw -> news.clean
-> news.tagged -> news.stories -> news.alerts), raw bytes on every topic, and the producer and
consumer settings of ``streams/app.py`` (read from the same ``WIREWATCH_*`` variables). Each
agent parses the JSON value (orjson) and sends the original bytes on, keyed as it came.
Whatever the pipeline spends beyond this is our code; this is what Faust costs on its own.

    WIREWATCH_BROKER_URL=kafka://127.0.0.1:PORT WIREWATCH_TOPIC_PREFIX=p. \\
        python -m bench.passthrough worker --loglevel warn

Topic names: ``{WIREWATCH_TOPIC_PREFIX}pass.raw``, ``pass.h1``, ``pass.h2``, ``pass.h3``,
``pass.out``; consumer group ``WIREWATCH_APP_ID`` (set it apart from the pipeline's).
"""

from __future__ import annotations

import itertools
import os
from typing import Any

import aiokafka
import faust
import orjson
from faust.types import StreamT, TopicT

from streams.producer import install_idempotent_producer
from streams.settings import faust_options, load_settings
from streams.stages import PIPELINE
from streams.topics import TOPICS

__all__ = ["HOPS", "PARTITIONS", "app", "topic_names"]

#: The pipeline's topic chain (streams/stages.py): news.raw, then what each main-line stage
#: writes first (news.clean, news.tagged, news.stories, news.alerts).
_CHAIN: tuple[str, ...] = (PIPELINE[0].reads[0], *(stage.writes[0] for stage in PIPELINE))
#: (name, partitions): one hop per stage, with the partition counts of the real topics.
HOPS: tuple[tuple[str, int], ...] = tuple(
    ("raw" if i == 0 else "out" if i == len(_CHAIN) - 1 else f"h{i}", TOPICS[key].partitions)
    for i, key in enumerate(_CHAIN))
PARTITIONS: dict[str, int] = dict(HOPS)

settings = load_settings()

# What-if knob of the benchmark (not a wirewatch setting): Faust hard-codes the consumer's
# fetch_max_wait_ms=1500. BENCH_FETCH_MAX_WAIT_MS overrides it in this process only, to show
# what that wait costs in latency per hop.
if os.environ.get("BENCH_FETCH_MAX_WAIT_MS"):
    _WAIT_MS = int(os.environ["BENCH_FETCH_MAX_WAIT_MS"])

    class _Consumer(aiokafka.AIOKafkaConsumer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            if kwargs.get("group_id"):
                kwargs["fetch_max_wait_ms"] = _WAIT_MS
            super().__init__(*args, **kwargs)

    aiokafka.AIOKafkaConsumer = _Consumer  # type: ignore[misc]


def topic_names(prefix: str) -> dict[str, str]:
    """Full topic name of each hop under ``prefix``."""
    return {name: f"{prefix}pass.{name}" for name, _ in HOPS}


# Exactly the client settings of streams/app.py, from the same variables.
install_idempotent_producer()
app = faust.App(settings.group_id,
                **faust_options(settings, data_name=f"passthrough-{settings.web_port}"))

_names = topic_names(settings.topic_prefix)
topics: dict[str, TopicT] = {
    name: app.topic(_names[name], key_type=bytes, value_type=bytes, key_serializer="raw",
                    value_serializer="raw", partitions=partitions)
    for name, partitions in HOPS
}


def _hop(source: str, target: str) -> None:
    out = topics[target]

    async def relay(stream: StreamT) -> None:
        async for event in stream.events():
            orjson.loads(event.value or b"null")  # "decode": what a stage must do at least
            await out.send(key=event.key, value=event.value)

    relay.__name__ = relay.__qualname__ = f"pass_{source}_to_{target}"
    app.agent(topics[source], name=f"bench.passthrough.{relay.__name__}")(relay)


for (_src, _), (_dst, _) in itertools.pairwise(HOPS):
    _hop(_src, _dst)


@app.page("/healthz")
async def health_page(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
    return web.json({"status": "ok"})


if __name__ == "__main__":
    app.main()
