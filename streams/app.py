"""The one ``faust.App`` of wirewatch, its topics, and its web pages.

Import order matters: settings are read when this module is first imported, so the CLI sets
``WIREWATCH_BROKER_URL`` (e.g. to the embedded broker) before importing it. Agents live in
``agents/`` and register themselves when ``load_agents()`` imports them.
"""

from __future__ import annotations

import importlib
import logging

import faust
from faust.types import TopicT
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.logs import logging_config
from streams.metrics import METRICS, REGISTRY
from streams.offsets import install_strict_consumer, stalled_partitions
from streams.producer import install_idempotent_producer
from streams.settings import faust_options, load_settings
from streams.stages import STAGES, stage
from streams.topics import TOPICS, topic_name
from streams.web import CachedBody, RequestGate, install

__all__ = ["AGENT_MODULES", "VERSION", "app", "load_agents", "settings", "stage_input", "topics"]

VERSION = "0.1.0"
log = logging.getLogger(__name__)

settings = load_settings()
install_idempotent_producer()
install_strict_consumer()

app = faust.App(
    settings.group_id,
    **faust_options(settings, data_name=str(settings.web_port)),
    table_cleanup_interval=60.0,
    logging_config=logging_config(settings.log_format, settings.log_level),
)


def _topic(key: str) -> TopicT:
    # Raw bytes in and out: our code decodes, so a bad message is a dead letter, not a crash.
    return app.topic(topic_name(settings, key), key_type=bytes, value_type=bytes,
                     key_serializer="raw", value_serializer="raw",
                     partitions=TOPICS[key].partitions)


topics: dict[str, TopicT] = {key: _topic(key) for key in TOPICS}


def stage_input(name: str) -> TopicT:
    """What the agent of stage ``name`` reads (streams/stages.py): its topic, or one channel
    over its topics."""
    reads = stage(name).reads
    if len(reads) == 1:
        return topics[reads[0]]
    return app.topic(*(topic_name(settings, key) for key in reads), key_type=bytes,
                     value_type=bytes, key_serializer="raw", value_serializer="raw")

#: Every stage's agent (streams/stages.py), then the modules that add pages and timers.
AGENT_MODULES: tuple[str, ...] = (
    *(stage.agent for stage in STAGES),
    "agents.watch.api",
    "streams.lag",
)


def load_agents() -> None:
    """Import every stage's agent (and the lag sampler) so they register with ``app``."""
    for name in AGENT_MODULES:
        importlib.import_module(name)


# The web server shares the agents' event loop: requests get about 10 % of it and queue
# for the rest (/healthz and /readyz skip the queue), connections that send no complete
# request within 15 s are closed, and open connections are capped (streams/web.py, issue 17).
web_gate = RequestGate()
install(app.web, web_gate)

# generate_latest takes milliseconds; under a flood of scrapes it is made at most once per
# 20 times that (so at most 5 % of the loop, and the page is ~50 ms old at the usual cost).
_metrics_body = CachedBody(lambda: generate_latest(REGISTRY))


@app.page("/metrics")
async def metrics_page(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
    return web.bytes(_metrics_body.get(), headers={"Content-Type": CONTENT_TYPE_LATEST})


@app.page("/healthz")
async def health_page(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
    """Liveness: the process answers."""
    return web.json({"status": "ok", "version": VERSION})


@app.page("/readyz")
async def ready_page(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
    """Readiness: partitions assigned, tables recovered, not rebalancing, no partition stalled
    (503 until then)."""
    recovered = app.tables.recovery.completed.is_set()
    assigned = bool(app.consumer.assignment()) if app.consumer else False
    stalled = stalled_partitions()
    ready = (assigned and recovered and not app.rebalancing and not app.in_recovery
             and not stalled)
    return web.json({"ready": ready, "assigned": assigned, "recovered": recovered,
                     "rebalancing": bool(app.rebalancing), "stalled": stalled},
                    status=200 if ready else 503)


METRICS.build_info.info({"version": VERSION, "faust": faust.__version__})
