"""The offset rules of streams/offsets.py: what may be committed, and when a partition is
sought back (a hole), stepped over (offsets that do not exist) or kicked (a stall)."""

from __future__ import annotations

import asyncio

from faust.types import TP

from streams.offsets import (
    HOLE_GRACE_SECONDS,
    STALL_REPORT_SECONDS,
    STALL_SECONDS,
    PartitionView,
    ReadOffsets,
    _Memory,
    committable_run,
    partition_actions,
)

TP0 = TP("news.clean", 0)


def test_only_the_run_starting_at_the_committed_offset_is_committable() -> None:
    assert committable_run(4, [4, 5, 6, 9]) == 3
    assert committable_run(4, [4]) == 1


def test_an_unacknowledged_head_holds_the_commit_back() -> None:
    # Faust 0.15 commits 11 here (gap filling) and 6 for [5, 6] after 4 (#606's off-by-one).
    assert committable_run(4, [11, 12, 13]) == 0
    assert committable_run(4, [5, 6]) == 0


def test_nothing_is_committable_before_the_start_is_known() -> None:
    assert committable_run(None, [0, 1, 2]) == 0
    assert committable_run(0, []) == 0


def _view(committed: int | None = 4, first_acked: int | None = None, read: int | None = 10,
          highwater: int | None = 11) -> dict[TP, PartitionView]:
    return {TP0: PartitionView(committed, first_acked, read, highwater)}


def test_a_hole_is_sought_back_once_after_its_grace_then_stepped_over() -> None:
    memory = _Memory()
    views = _view(first_acked=11)
    assert partition_actions(views, memory, 0.0) == []
    assert partition_actions(views, memory, HOLE_GRACE_SECONDS - 1) == []
    assert partition_actions(views, memory, HOLE_GRACE_SECONDS) == [("seek_back", TP0, 4)]
    # Read again and still not there: the offsets do not exist.
    later = 2 * HOLE_GRACE_SECONDS
    assert partition_actions(views, memory, later - 1) == []
    assert partition_actions(views, memory, later) == [("step_over", TP0, 11)]


def test_an_in_order_partition_has_no_hole() -> None:
    memory = _Memory()
    for now in (0.0, 100.0, 1000.0):
        assert partition_actions(_view(first_acked=4, read=now_read(now)), memory, now) == []


def now_read(now: float) -> int:
    return 10 + int(now)


def test_a_hole_that_closes_is_forgotten() -> None:
    memory = _Memory()
    partition_actions(_view(first_acked=11), memory, 0.0)
    partition_actions(_view(first_acked=4), memory, 5.0)
    assert partition_actions(_view(first_acked=11), memory, 5.0 + HOLE_GRACE_SECONDS - 1) == []


def test_a_stall_is_kicked_then_reported() -> None:
    memory = _Memory()
    stuck = _view(read=10, highwater=50)
    assert partition_actions(stuck, memory, 0.0) == []
    assert partition_actions(stuck, memory, STALL_SECONDS - 1) == []
    assert partition_actions(stuck, memory, STALL_SECONDS) == [("kick", TP0, 11)]
    assert not memory.stalled
    assert partition_actions(stuck, memory, STALL_SECONDS + STALL_REPORT_SECONDS - 1) == []
    assert not memory.stalled
    assert partition_actions(stuck, memory, STALL_SECONDS + STALL_REPORT_SECONDS) == []
    assert memory.stalled == {TP0}
    # Reading again clears it.
    assert partition_actions(_view(read=11, highwater=50), memory, 100 * STALL_SECONDS) == []
    assert not memory.stalled


def test_a_caught_up_or_revoked_partition_is_not_a_stall() -> None:
    memory = _Memory()
    for now in (0.0, STALL_SECONDS, 3 * STALL_SECONDS):
        assert partition_actions(_view(read=10, highwater=11), memory, now) == []
    partition_actions(_view(read=10, highwater=50), memory, 0.0)
    assert partition_actions({}, memory, STALL_SECONDS) == []
    assert not memory.read_at and not memory.stalled


def test_a_rewind_holds_the_read_offset_until_its_target_is_read_again() -> None:
    reads = ReadOffsets({TP0: 160})
    reads[TP0] = 98  # the seek
    reads.rewinds[TP0] = 98
    for late in (161, 162):  # the rest of the batch fetched before the seek
        reads[TP0] = late
        assert reads[TP0] == 98  # so 98.. fetched again are not taken for old
    reads[TP0] = 98
    assert not reads.rewinds
    reads[TP0] = 99
    assert reads[TP0] == 99


def test_a_seek_to_committed_offsets_or_a_revocation_cancels_a_rewind() -> None:
    reads = ReadOffsets({})
    assert reads[TP0] is None
    reads.rewinds[TP0] = 5
    reads.update({TP0: 7})
    assert not reads.rewinds and reads[TP0] == 7
    reads.rewinds[TP0] = 5
    reads.pop(TP0)
    assert not reads.rewinds


def test_a_hole_at_an_offset_faust_skipped_is_sought_back_at_once_and_only_once() -> None:
    memory = _Memory()
    views = _view(first_acked=11)
    assert partition_actions(views, memory, 0.0, {TP0: 4}) == [("seek_back", TP0, 4)]
    assert partition_actions(views, memory, 1.0, {TP0: 4}) == []  # its read again is under way
    assert partition_actions(views, memory, 0.0 + HOLE_GRACE_SECONDS, {}) == [
        ("step_over", TP0, 11)]
    # A skip beyond the hole says nothing about it: the grace applies.
    assert partition_actions(_view(committed=20, first_acked=25), _Memory(), 0.0, {TP0: 22}) == []


class _Counter:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def labels(self, kind: str) -> _Counter:
        self.kind = kind
        return self

    def inc(self) -> None:
        self.counts[self.kind] = self.counts.get(self.kind, 0) + 1


class _Consumer:
    """What _resume_left_paused reads and calls of Faust's consumer."""

    def __init__(self, paused: set[TP], active: set[TP]) -> None:
        self._paused_partitions = paused
        self._active_partitions = active

        self._committed_offset = {TP0: 7}
        self.first_offsets: dict[TP, int] = {}
        self.rewound: list[tuple[TP, int]] = []

    def resume_partitions(self, tps: set[TP]) -> None:
        self._paused_partitions -= tps
        self._active_partitions |= tps

    async def rewind(self, tp: TP, offset: int) -> None:
        self.rewound.append((tp, offset))


def test_a_partition_left_paused_on_two_rounds_is_resumed_and_read_again() -> None:
    from streams import offsets

    offsets.MEMORY.paused.clear()
    tp1 = TP("news.raw", 1)
    consumer = _Consumer(paused={TP0, tp1}, active=set())
    metrics = type("M", (), {"partition_mends": _Counter()})()
    resume = offsets._resume_left_paused
    asyncio.run(resume(consumer, [TP0, tp1], metrics))  # type: ignore[arg-type]
    assert consumer._paused_partitions == {TP0, tp1}  # first sight: Faust may be about to
    consumer.resume_partitions({tp1})  # ...and it did, for one of them
    asyncio.run(resume(consumer, [TP0, tp1], metrics))  # type: ignore[arg-type]
    assert not consumer._paused_partitions and consumer._active_partitions == {TP0, tp1}
    # From its committed offset: what was fetched while it was paused never reached a stage.
    assert consumer.rewound == [(TP0, 7)]
    assert metrics.partition_mends.counts == {"resume": 1}
