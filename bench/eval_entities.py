"""Entity precision / recall / F1 of the tag stage on the CoNLL-2003 English test set.

    python bench/eval_entities.py [path/to/conll2003_eng_testb.jsonl.gz]

Gold IOB1 tags give spans of PER/ORG/LOC (MISC is not a kind of ours and is ignored).
Two scores per type: exact span (same characters) and name level (the set of distinct
(surface, type) per document, the way the pipeline uses entities). Also µs per document.
CoNLL is 1996 Reuters, sports-heavy, with SHOUTED headlines: a rough guide, not a target.
"""

from __future__ import annotations

import gzip
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

from agents.tag.entities import EntityTagger

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "conll2003_eng_testb.jsonl.gz"
KINDS = {"PER": "person", "ORG": "org", "LOC": "place"}

Span = tuple[int, int, str]


def gold_spans(doc: dict) -> tuple[str, list[Span]]:
    """Rebuild the text (tokens joined by spaces, one sentence a line) and the gold spans."""
    lines: list[str] = []
    spans: list[Span] = []
    offset = 0
    for sent in doc["sentences"]:
        current: list[int] | None = None  # [start, end, type index]
        prev_type = ""
        pos = offset
        for tok, tag in zip(sent["tokens"], sent["ner_iob1"], strict=True):
            start, end = pos, pos + len(tok)
            kind = tag[2:] if tag != "O" else ""
            if kind and kind == prev_type and not tag.startswith("B-") and current:
                current[1] = end
            else:
                if current and prev_type in KINDS:
                    spans.append((current[0], current[1], KINDS[prev_type]))
                current = [start, end] if kind else None
            prev_type = kind
            pos = end + 1
        if current and prev_type in KINDS:
            spans.append((current[0], current[1], KINDS[prev_type]))
        line = " ".join(sent["tokens"])
        lines.append(line)
        offset += len(line) + 1
    return "\n".join(lines), spans


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        docs = [json.loads(line) for line in fh]
    tagger = EntityTagger()
    exact: dict[str, Counter[str]] = {k: Counter() for k in (*KINDS.values(), "all")}
    names: dict[str, Counter[str]] = {k: Counter() for k in (*KINDS.values(), "all")}
    times: list[float] = []
    for doc in docs:
        text, gold = gold_spans(doc)
        t0 = time.perf_counter()
        mentions = tagger.mentions(text)
        times.append(time.perf_counter() - t0)
        pred = {(m.start, m.end, m.kind or "") for m in mentions}
        gold_set = set(gold)
        gold_names = {(" ".join(text[s:e].split()), k) for s, e, k in gold}
        pred_names = {(m.surface, m.kind or "") for m in mentions}
        for table, p_set, g_set in ((exact, pred, gold_set), (names, pred_names, gold_names)):
            for item in p_set:
                kind = item[-1]
                outcome = "tp" if item in g_set else "fp"
                table[kind][outcome] += 1
                table["all"][outcome] += 1
            for item in g_set - p_set:
                table[item[-1]]["fn"] += 1
                table["all"]["fn"] += 1
    for label, table in (("exact span", exact), ("name level", names)):
        print(f"== {label}")
        for kind, c in table.items():
            p, r, f = prf(c["tp"], c["fp"], c["fn"])
            print(f"  {kind:7s} P={p:.3f} R={r:.3f} F1={f:.3f}  (tp={c['tp']} fp={c['fp']} fn={c['fn']})")
    us = sorted(t * 1e6 for t in times)
    chars = statistics.mean(len(gold_spans(d)[0]) for d in docs)
    p99 = us[min(len(us) - 1, int(len(us) * 0.99))]
    print(
        f"µs per document: median {statistics.median(us):.0f}, p99 {p99:.0f}"
        f" ({len(docs)} docs, mean {chars:.0f} chars)"
    )


if __name__ == "__main__":
    main()
