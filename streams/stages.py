"""The stage table: every stage of the pipeline, the topics it reads and writes, its agent.

The topic list's wiring, the app's agents (``streams.app``), the metric label sets
(``streams.metrics``), the benchmarks' hop chain and their smoke test derive from it. A new
stage is a row here, its module under ``agents/``, and the ops files that name stages
(README "Where things live" has the recipe).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PIPELINE", "STAGES", "STAGE_NAMES", "Stage", "stage"]


@dataclass(frozen=True, slots=True)
class Stage:
    name: str  # the ``stage`` label of metrics and logs
    reads: tuple[str, ...]  # keys of ``streams.topics.TOPICS``
    writes: tuple[str, ...]  # likewise; the dead-letter topic is implied for every stage
    agent: str  # the module whose import registers the stage's Faust agent
    main_line: bool = True  # on the raw -> alerts path (the benchmarks' hop chain)


STAGES: tuple[Stage, ...] = (
    Stage("clean", reads=("raw",), writes=("clean",), agent="agents.clean.agent"),
    Stage("tag", reads=("clean",), writes=("tagged",), agent="agents.tag.agent"),
    Stage("dedup", reads=("tagged",), writes=("stories",), agent="agents.dedup.agent"),
    Stage("alert", reads=("stories", "backfill"), writes=("alerts", "deliveries"),
          agent="agents.alert.agent"),
    Stage("webhook", reads=("deliveries",), writes=(), agent="agents.webhook.agent",
          main_line=False),
    # Spikes and digests per watch: reads the alerts (keyed by watch), skips its own kinds.
    Stage("signals", reads=("alerts",), writes=("alerts", "deliveries"),
          agent="agents.signals.agent", main_line=False),
    # Entity trends: counts the entities of news.tagged, publishes what stands out.
    Stage("trends", reads=("tagged",), writes=("trends", "alerts", "deliveries"),
          agent="agents.trends.agent", main_line=False),
    # Before clean: polls the feeds and sitemaps of its partitions of news.sources.
    Stage("ingest", reads=("sources",), writes=("raw", "ingest_state"),
          agent="agents.ingest.agent", main_line=False),
)

STAGE_NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)
#: The stages an article passes from news.raw to news.alerts, in order.
PIPELINE: tuple[Stage, ...] = tuple(s for s in STAGES if s.main_line)


def stage(name: str) -> Stage:
    """The stage called ``name`` (KeyError for an unknown one)."""
    for row in STAGES:
        if row.name == name:
            return row
    raise KeyError(name)
