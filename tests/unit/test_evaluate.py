"""The scores ``wirewatch eval stories`` prints (``agents/dedup/evaluate.py``)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from agents.dedup.evaluate import bcubed, pairwise, time_gap_baseline


def test_bcubed_and_pairwise_on_a_hand_worked_clustering() -> None:
    gold = ["a", "a", "a", "b", "b"]
    pred = ["1", "1", "2", "2", "2"]
    # B-cubed precision per item: 1, 1, 1/3, 2/3, 2/3; recall: 2/3, 2/3, 1/3, 1, 1
    b3 = bcubed(pred, gold)
    assert b3["precision"] == pytest.approx((1 + 1 + 1 / 3 + 2 / 3 + 2 / 3) / 5)
    assert b3["recall"] == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1 + 1) / 5)
    # pairs predicted together: (0,1) right; (2,3), (2,4) wrong, (3,4) right; gold pairs: 4
    pw = pairwise(pred, gold)
    assert (pw["precision"], pw["recall"]) == (pytest.approx(2 / 4), pytest.approx(2 / 4))
    assert bcubed(gold, gold)["f1"] == pairwise(gold, gold)["f1"] == 1.0


def test_time_gap_baseline_reads_stories_crawled_in_bursts(tmp_path: Path) -> None:
    def row(n: int, story: str, second: int) -> bytes:
        return orjson.dumps({"id": n, "title": "t", "story_id": story,
                             "published_at": f"2014-03-10T16:{second // 60:02}:{second % 60:02}Z"})

    bursts = tmp_path / "bursts.jsonl"
    bursts.write_bytes(b"\n".join([row(0, "x", 0), row(1, "x", 3), row(2, "y", 40),
                                   row(3, "y", 45), row(4, "z", 120)]))
    r = time_gap_baseline(bursts, "story_id")
    assert (r["articles"], r["predicted_stories"], r["bcubed"]["f1"]) == (5, 3, 1.0)
    interleaved = tmp_path / "interleaved.jsonl"
    interleaved.write_bytes(b"\n".join([row(0, "x", 0), row(1, "y", 3), row(2, "x", 6)]))
    assert time_gap_baseline(interleaved, "story_id")["bcubed"]["f1"] < 1.0
