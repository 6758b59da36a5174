"""The stage table (streams/stages.py) is whole and consistent with the topics and metrics."""

from __future__ import annotations

import importlib.util
import itertools

from streams.metrics import METRICS
from streams.metrics import STAGES as METRIC_STAGES
from streams.stages import PIPELINE, STAGE_NAMES, STAGES, stage
from streams.topics import TOPICS

#: Topics no stage writes: the source list, the watch definitions, the dead letters and backfill
#: (news.raw has a writer, ingest, besides the outside publishers).
WRITTEN_OUTSIDE_STAGES = {"sources", "watches", "deadletter", "backfill"}


def test_every_stage_names_known_topics_and_an_existing_agent_module() -> None:
    for row in STAGES:
        assert set(row.reads) <= TOPICS.keys() and set(row.writes) <= TOPICS.keys(), row
        assert row.reads, row
        assert importlib.util.find_spec(row.agent) is not None, row.agent
    assert len(set(STAGE_NAMES)) == len(STAGES)


def test_every_topic_has_a_writer_and_the_main_line_is_a_chain() -> None:
    written = {key for row in STAGES for key in row.writes}
    assert TOPICS.keys() - written == WRITTEN_OUTSIDE_STAGES
    assert PIPELINE[0].reads[0] == "raw" and PIPELINE[-1].writes[0] == "alerts"
    for before, after in itertools.pairwise(PIPELINE):
        assert before.writes[0] in after.reads, (before.name, after.name)


def test_metric_labels_come_from_the_table() -> None:
    assert METRIC_STAGES == STAGE_NAMES
    labelled = {labels[0] for labels in METRICS.processing_seconds._metrics}
    assert labelled == set(STAGE_NAMES)
    assert stage("dedup").reads == ("tagged",)
