"""Evaluate the dedup stage on the shared labelled data sets and print a table.

    python bench/eval_stories.py [--data ../shared/data] [--no-throughput]

Stories: pairwise and B-cubed precision / recall / F1 on ECB+ (full text, same-topic look-alike
events) and the UCI News Aggregator slice (headlines only); duplicates: BBC body copies
caught and distinct articles wrongly flagged; throughput: a synthetic stream through a full
50,000-article window. Data is read in place, never copied.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from agents.dedup.evaluate import (
    evaluate_duplicates,
    evaluate_stories,
    evaluate_throughput,
    time_gap_baseline,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # ../shared beside the repo
STORY_SETS = [  # (file, label, name, undated)
    ("ecbplus_event_clusters.jsonl.gz", "cluster_id", "ecbplus", False),
    ("uci_news_aggregator_slice_2014-03.jsonl.gz", "story_id", "uci", False),
    # UCI timestamps are per-story crawl batches: the same replay without them, text alone.
    ("uci_news_aggregator_slice_2014-03.jsonl.gz", "story_id", "uci-undated", True),
]


def story_table(data: Path) -> None:
    head = f"{'dataset':<12}{'docs':>6}{'gold':>6}{'pred':>6}"
    head += f"{'pw P':>7}{'pw R':>7}{'pw F1':>7}{'B3 P':>7}{'B3 R':>7}{'B3 F1':>7}{'art/s':>8}"
    print(head)
    for file, label, name, undated in STORY_SETS:
        r = evaluate_stories(data / file, label, undated=undated)
        pw, b3 = r["pairwise"], r["bcubed"]
        print(
            f"{name:<12}{r['articles']:>6}{r['gold_stories']:>6}"
            f"{r['predicted_stories']:>6}{pw['precision']:>7.3f}{pw['recall']:>7.3f}"
            f"{pw['f1']:>7.3f}{b3['precision']:>7.3f}{b3['recall']:>7.3f}{b3['f1']:>7.3f}"
            f"{r['articles_per_second']:>8.0f}"
        )


def time_gap_line(data: Path) -> None:
    r = time_gap_baseline(data / STORY_SETS[1][0], STORY_SETS[1][1])
    print(f"uci by time alone (no text; a new story after 10 s without a headline): "
          f"{r['predicted_stories']} stories, B3 F1 {r['bcubed']['f1']:.3f}: its timestamps "
          f"are per-story crawl bursts, so only uci-undated measures the text")


def duplicate_table(data: Path) -> None:
    r = evaluate_duplicates(data / "bbc_news_2225.jsonl.gz")
    print(
        f"\nBBC body duplicates: caught {r['caught']}/{r['gold_duplicates']} "
        f"({r['caught_exact']} exact, {r['caught_near']} near); flagged outside the gold list: "
        f"{r['false_duplicates']}, of which below shingle Jaccard 0.5 (true false positives): "
        f"{r['false_below_half']}"
    )


def throughput_table(data: Path) -> None:
    r = evaluate_throughput(data / "bbc_news_2225.jsonl.gz")
    story_share = r["story_state_bytes_mean"] * r["stories_in_window"] / r["window_articles"]
    print(
        f"\nthroughput, synthetic stream, window {r['window_articles']:,} articles "
        f"({r['stories_in_window']:,} stories): {r['articles_per_second']:,.0f} articles/s "
        f"({r['articles_per_cpu_second']:,.0f} per CPU second) over {r['measured_articles']:,}; "
        f"article state {r['article_state_bytes_mean']:.0f} B/article, "
        f"story state {r['story_state_bytes_mean']:.0f} B/story, "
        f"{r['article_state_bytes_mean'] + story_share:.0f} B/article incl. its story share"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--no-throughput", action="store_true")
    args = parser.parse_args()
    story_table(args.data)
    time_gap_line(args.data)
    duplicate_table(args.data)
    if not args.no_throughput:
        throughput_table(args.data)


if __name__ == "__main__":
    main()
