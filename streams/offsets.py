"""Offsets: never commit past a message no stage processed, and mend partitions that stop.

Faust (0.15) can commit an offset past a message its stage never saw; the message is then
lost for good at the next restart. The fault suite lost 6 articles of 1,200 that way after a
worker kill: the new worker fetched ``news.clean`` offsets 5-10 while Faust's flow control was
still suspended for the start-up rebalance, and Faust's stream *skips* such messages but
*acknowledges* them (``Stream._py_aiter``: "Skipping message ... flow_control.is_active"), so
the next commit passed them (faust-streaming #596). Faust also takes a jump in the read
position as acknowledged (``Consumer._add_gap``, meant for compacted topics) and commits over
one unacknowledged offset at the head (#606, the off-by-one ``min(acked) - committed > 1``).

Two parts mend it:

* ``StrictConsumer`` refuses the acknowledgement of a message that was skipped (flow control
  suspended, or fetched in an earlier rebalance generation): after the rebalance Faust seeks
  back to the committed offset and it is read again. It commits only the run of acknowledged
  offsets that starts exactly where reading started (the committed offset, or for a group's
  first commit the partition's earliest offset) and keeps no gaps, so a message lost in memory
  holds the commit back instead of being passed: a crash redelivers it.
* ``mend_partitions`` (every 5 s) finds such a *hole* (the committed offset not acknowledged
  for ``HOLE_GRACE_SECONDS`` while later ones are) and seeks the partition back to it, so the
  lost messages are read again without a restart (the messages after it come twice; every
  stage is idempotent). A hole still there after one seek is an offset that does not exist
  (a transaction marker, a compacted record, expired data): it is stepped over, logged.
  It also resumes a stage's partition that a rebalance left paused after recovery (seen on
  two rounds in a row: the stall of faust-streaming #166), finds any other *stall* (#629: a
  partition with messages waiting and none read for ``STALL_SECONDS``) and resumes it; both
  are read again from their committed offset, since Faust drops the records fetched for a
  paused partition (the fault suite lost 41 articles of 100 to a seek to the fetch position).
  A partition still stalled ``STALL_REPORT_SECONDS`` later marks the worker not ready
  (``/readyz`` 503) for ops.

``committable_run`` and ``partition_actions`` are the pure decisions; the rest applies them.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message

__all__ = [
    "HOLE_GRACE_SECONDS", "STALL_REPORT_SECONDS", "STALL_SECONDS", "PartitionView", "ReadOffsets",
    "StrictConsumer", "committable_run", "install_strict_consumer", "mend_partitions",
    "partition_actions", "stage_input_topics", "stalled_partitions",
]

log = logging.getLogger("wirewatch.offsets")

#: How long the committed offset may stay unacknowledged while later offsets are. A stage
#: handles messages in order, so this is only ever the time one message takes.
HOLE_GRACE_SECONDS = 5.0
#: How long a partition with messages waiting may go without one read.
STALL_SECONDS = 15.0
#: How much longer a kicked partition may stay without a read before it is reported.
STALL_REPORT_SECONDS = 45.0


def committable_run(start: int | None, acked: list[int]) -> int:
    """How many of the sorted ``acked`` offsets may be committed: the consecutive run that
    begins exactly at ``start`` (the next offset to commit). 0 when ``start`` is unknown or not
    acknowledged yet, so a missing message holds the commit back instead of being passed."""
    if start is None or not acked or acked[0] != start:
        return 0
    run = 1
    while run < len(acked) and acked[run] == start + run:
        run += 1
    return run


class ReadOffsets(defaultdict):  # type: ignore[type-arg]
    """Faust's last-offset-read map, able to hold a partition back at a rewind.

    Faust's fetch loop hands on the rest of a batch it already fetched after a seek, and sets
    the read offset to each; the records fetched again from the rewind point would then look
    old to it and be dropped. While a rewind is pending the read offset stays at its target
    (later records still pass; they are only handed on twice) until the target arrives."""

    def __init__(self, current: Mapping[TP, int | None]) -> None:
        super().__init__(lambda: None, current)
        self.rewinds: dict[TP, int] = {}

    def __setitem__(self, tp: TP, offset: int | None) -> None:
        target = self.rewinds.get(tp)
        if target is not None and offset is not None:
            if offset > target:
                return
            if offset == target:
                del self.rewinds[tp]
        super().__setitem__(tp, offset)

    def pop(self, tp: TP, *default: Any) -> Any:
        self.rewinds.pop(tp, None)
        return super().pop(tp, *default)

    def update(self, *args: Any, **kwargs: Any) -> None:  # a seek to committed offsets
        self.rewinds.clear()
        super().update(*args, **kwargs)


class StrictConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer, committing only what its stages acknowledged, in order."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reads = ReadOffsets(self._read_offset)
        self._read_offset = self.reads
        #: Where a group with no committed offset started reading (its earliest offset),
        #: filled in by ``mend_partitions``.
        self.first_offsets: dict[TP, int] = {}
        #: The lowest offset per partition whose acknowledgement was refused (skipped).
        self.skipped: dict[TP, int] = {}

    async def rewind(self, tp: TP, offset: int) -> None:
        """Read ``tp`` again from ``offset``, records already fetched beyond it included."""
        await self.seek(tp, offset)
        self.reads.rewinds[tp] = offset

    def ack(self, message: Message) -> bool:
        stale = (message.generation_id is not None
                 and message.generation_id != self.app.consumer_generation_id)
        if stale or not self.app.flow_control.is_active():
            # Skipped, not processed. Usually read again after the rebalance's seek; if it was
            # fetched after that seek, the mender rewinds to it at its next round.
            tp = message.tp
            self.skipped[tp] = min(message.offset, self.skipped.get(tp, message.offset))
            return False
        return bool(super().ack(message))

    def _new_offset(self, tp: TP) -> int | None:
        acked = self._acked[tp]
        if not acked:
            return None
        acked.sort()
        committed = self._committed_offset[tp]
        start = committed if committed is not None else self.first_offsets.get(tp)
        run = committable_run(start, acked)
        if not run:
            return None
        done = acked[:run]
        del acked[:run]
        self._acked_index[tp].difference_update(done)
        return done[-1] + 1

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        # A jump in the read position is not taken as acknowledged: see the module docstring.
        log.debug("read position of %s[%d] jumped over %d..%d", tp.topic, tp.partition,
                  offset_from, offset_to)


def install_strict_consumer() -> None:
    """Make every Faust app of this process use ``StrictConsumer`` (call before it starts)."""
    faust_aiokafka.Transport.Consumer = StrictConsumer


@dataclass(slots=True)
class PartitionView:
    """What the mender knows of one assigned partition of a stage's input topic."""

    committed: int | None  # next offset to commit (None: never committed, earliest unknown)
    first_acked: int | None  # lowest acknowledged offset not yet committed
    read: int | None  # last offset handed to a stage
    highwater: int | None  # next offset the broker will write


@dataclass(slots=True)
class _Memory:
    hole_since: dict[TP, float] = field(default_factory=dict)
    holes_mended: dict[TP, int] = field(default_factory=dict)  # tp -> offset seeked back to
    read_at: dict[TP, tuple[int | None, float]] = field(default_factory=dict)
    stall_kicked: dict[TP, float] = field(default_factory=dict)
    stalled: set[TP] = field(default_factory=set)
    paused: set[TP] = field(default_factory=set)  # seen left paused at the last round


def partition_actions(views: Mapping[TP, PartitionView], memory: _Memory, now: float,
                      skipped: Mapping[TP, int] | None = None) -> list[tuple[str, TP, int]]:
    """Decide, per partition, one of ("seek_back", tp, offset) for a hole seen the first time,
    ("step_over", tp, offset) for a hole that outlived its seek, ("kick", tp, offset) for a
    stall, and update ``memory`` (partitions no longer assigned are forgotten). A hole at an
    offset Faust is known to have skipped (``skipped``) needs no grace."""
    skipped = skipped or {}
    for table in (memory.hole_since, memory.holes_mended, memory.read_at, memory.stall_kicked):
        for tp in list(table):
            if tp not in views:
                del table[tp]
    memory.stalled &= set(views)
    actions: list[tuple[str, TP, int]] = []
    for tp, view in views.items():
        hole = _hole_action(tp, view, memory, now, skipped.get(tp))
        if hole is not None:
            actions.append(hole)
        last_read, changed_at = memory.read_at.get(tp, (None, now))
        if view.read != last_read or tp not in memory.read_at:
            memory.read_at[tp] = (view.read, now)
            memory.stall_kicked.pop(tp, None)
            memory.stalled.discard(tp)
            continue
        next_offset = (view.read + 1) if view.read is not None else view.committed
        waiting = (view.highwater is not None and next_offset is not None
                   and view.highwater > next_offset)
        if not waiting:
            memory.read_at[tp] = (view.read, now)
            memory.stall_kicked.pop(tp, None)
            memory.stalled.discard(tp)
            continue
        if now - changed_at < STALL_SECONDS:
            continue
        kicked = memory.stall_kicked.get(tp)
        if kicked is None:
            assert next_offset is not None
            actions.append(("kick", tp, next_offset))
            memory.stall_kicked[tp] = now
        elif now - kicked >= STALL_REPORT_SECONDS:
            memory.stalled.add(tp)
    return actions


def _hole_action(tp: TP, view: PartitionView, memory: _Memory, now: float,
                 skipped_from: int | None) -> tuple[str, TP, int] | None:
    committed, first_acked = view.committed, view.first_acked
    if committed is None or first_acked is None or first_acked <= committed:
        memory.hole_since.pop(tp, None)
        return None
    since = memory.hole_since.setdefault(tp, now)
    mended_here = memory.holes_mended.get(tp) == committed
    known_skip = skipped_from is not None and skipped_from <= committed and not mended_here
    if now - since < HOLE_GRACE_SECONDS and not known_skip:
        return None
    memory.hole_since[tp] = now
    if mended_here:
        return ("step_over", tp, first_acked)
    memory.holes_mended[tp] = committed
    return ("seek_back", tp, committed)


def stage_input_topics(agents: Iterable[Any]) -> set[str]:
    """The topics Faust agents read (not changelogs, not the assignor's topic)."""
    names: set[str] = set()
    for agent in agents:
        names.update(getattr(agent.channel, "topics", ()) or ())
    return names


MEMORY = _Memory()
_generation: list[int | None] = [None]


def _left_paused(consumer: StrictConsumer, tp: TP) -> bool:
    active = consumer._active_partitions
    return tp in consumer._paused_partitions or (active is not None and tp not in active)


def _start(consumer: StrictConsumer, tp: TP) -> int | None:
    """Where ``tp`` must be read from again: its committed offset (or, never committed, its
    earliest). Not the fetch position: records fetched while a partition was paused never
    reached a stage, and seeking past them would lose them."""
    committed = consumer._committed_offset[tp]
    return committed if committed is not None else consumer.first_offsets.get(tp)


async def _resume_left_paused(consumer: StrictConsumer, assigned: list[TP], metrics: Any) -> None:
    """Resume a stage's partition that a rebalance left paused once recovery is over: Faust
    pauses every assigned partition and resumes them when recovery completes, but not when
    that step is cut short, and the partition is then never fetched again (the stall of
    faust-streaming #166; the fault suite saw it after a takeover). Paused on two rounds in a
    row, so a resume Faust is about to do is not raced."""
    paused = {tp for tp in assigned if _left_paused(consumer, tp)}
    for tp in sorted(paused & MEMORY.paused):
        log.warning("offsets: %s[%d] was left paused after a rebalance though recovery is over; "
                    "resuming it", tp.topic, tp.partition,
                    extra={"topic": tp.topic, "partition": tp.partition})
        consumer.resume_partitions({tp})
        start = _start(consumer, tp)
        if start is not None:  # records fetched while it was paused were dropped, unread
            await consumer.rewind(tp, start)
        metrics.partition_mends.labels("resume").inc()
    MEMORY.paused = paused - MEMORY.paused


def stalled_partitions() -> list[str]:
    """Partitions still stalled after a kick, as ``topic[partition]`` (for ``/readyz``)."""
    return sorted(f"{tp.topic}[{tp.partition}]" for tp in MEMORY.stalled)


def _views(consumer: StrictConsumer, assigned: Iterable[TP]) -> dict[TP, PartitionView]:
    views = {}
    for tp in assigned:
        committed = consumer._committed_offset[tp]
        acked = consumer._acked.get(tp)
        try:
            highwater = consumer.highwater(tp)
        except Exception:  # nothing fetched yet: no high watermark known
            highwater = None
        views[tp] = PartitionView(
            committed=committed if committed is not None else consumer.first_offsets.get(tp),
            first_acked=min(acked) if acked else None,
            read=consumer.reads.get(tp), highwater=highwater)
    return views


async def mend_partitions(app: Any, metrics: Any) -> None:
    """One round of hole and stall mending on ``app``'s consumer (see the module docstring)."""
    consumer = app.consumer
    if not isinstance(consumer, StrictConsumer):
        return
    if app.rebalancing or app.in_recovery or not app.flow_control.is_active():
        return
    if _generation[0] != app.consumer_generation_id:  # offsets were sought again: start over
        _generation[0] = app.consumer_generation_id
        MEMORY.hole_since.clear()
        MEMORY.holes_mended.clear()
        MEMORY.read_at.clear()
        MEMORY.stall_kicked.clear()
        MEMORY.stalled.clear()
        MEMORY.paused.clear()
    inputs = stage_input_topics(app.agents.values())
    assigned = [tp for tp in consumer.assignment() if tp.topic in inputs]
    if app.tables.recovery.completed.is_set():
        await _resume_left_paused(consumer, assigned, metrics)
    unknown = [tp for tp in assigned
               if consumer._committed_offset[tp] is None and tp not in consumer.first_offsets]
    if unknown:
        consumer.first_offsets.update(await consumer.earliest_offsets(*unknown))
    skipped = dict(consumer.skipped)
    consumer.skipped.clear()  # each is acted on (below) or already read again
    for kind, tp, offset in partition_actions(_views(consumer, assigned), MEMORY,
                                              time.monotonic(), skipped):
        where = f"{tp.topic}[{tp.partition}]@{offset}"
        fields = {"topic": tp.topic, "partition": tp.partition, "offset": offset}
        if kind == "seek_back":
            log.warning("offsets: %s was skipped (by Faust in a rebalance, or lost in memory) "
                        "while later offsets were processed; reading the partition again "
                        "from it", where, extra=fields)
            await consumer.rewind(tp, offset)
        elif kind == "step_over":
            log.warning("offsets: the offsets before %s still never arrived after reading again "
                        "(they do not exist: transaction markers, compaction or expiry); "
                        "committing past them", where, extra=fields)
            consumer._committed_offset[tp] = offset
            consumer.reads.rewinds.pop(tp, None)
        else:
            start = _start(consumer, tp)
            log.warning("offsets: no message read from %s[%d] for %.0f s while messages wait; "
                        "resuming it and reading again from %s", tp.topic, tp.partition,
                        STALL_SECONDS, start, extra=fields)
            consumer.resume_partitions({tp})
            if start is not None:
                await consumer.rewind(tp, start)
        metrics.partition_mends.labels(kind).inc()
    metrics.stalled_partitions.set(len(MEMORY.stalled))
    if MEMORY.stalled:
        log.error("offsets: partitions stalled after a restart of their fetch: %s "
                  "(/readyz reports not ready)", stalled_partitions())
