"""Train the entity model (agents/tag/ner) from CoNLL-2003 and print its dev scores.

    PYTHONPATH=. python bench/train_entities.py [--data ../shared/data] [--epochs 25]

Word clusters come from unlabelled text (CoNLL train, BBC, UCI headlines, ECB+); the model is
trained on CoNLL train, its epoch count chosen on dev (testa). The test set is not read.
Writes agents/tag/data/ner_model.npz; deterministic (seeded).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from agents.tag.entities import EntityTagger
from agents.tag.ner import train as T
from agents.tag.ner.clusters import build_clusters, corpus_lines
from agents.tag.ner.kernel import RUNTIME_TEMPLATES
from agents.tag.ner.model import MODEL_FILE, Config, Stage, read_model, save_model

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # ../shared beside the repo
OUT = Path(__file__).resolve().parents[1] / "agents" / "tag" / "data" / MODEL_FILE
TRAIN, DEV = "conll2003_eng_train.orig.gz", "conll2003_eng_testa.orig.gz"
UNLABELLED = ["bbc_news_2225.jsonl.gz", "uci_news_aggregator_slice_2014-03.jsonl.gz",
              "ecbplus_event_clusters.jsonl.gz"]
KINDS = {"PER": "person", "ORG": "org", "LOC": "place"}


def full_path_scores(docs: list[list[T.Sentence]], tagger: EntityTagger) -> None:
    """Dev scores through EntityTagger.mentions, counted as bench/eval_entities.py counts."""
    exact: dict[str, Counter[str]] = {k: Counter() for k in (*KINDS.values(), "all")}
    names: dict[str, Counter[str]] = {k: Counter() for k in (*KINDS.values(), "all")}
    for doc in docs:
        text, spans = T.text_and_spans(doc)
        gold = {(s, e, KINDS[k]) for s, e, k in spans if k in KINDS}
        mentions = tagger.mentions(text)
        pred = {(m.start, m.end, m.kind) for m in mentions}
        gold_names = {(" ".join(text[s:e].split()), k) for s, e, k in gold}
        pred_names = {(m.surface, m.kind) for m in mentions}
        for table, p_set, g_set in ((exact, pred, gold), (names, pred_names, gold_names)):
            for item in p_set:
                outcome = "tp" if item in g_set else "fp"
                table[item[-1]][outcome] += 1
                table["all"][outcome] += 1
            for item in g_set - p_set:
                table[item[-1]]["fn"] += 1
                table["all"]["fn"] += 1
    for label, table in (("exact span", exact), ("name level", names)):
        cells = []
        for kind, c in table.items():
            f1 = 2 * c["tp"] / (2 * c["tp"] + c["fp"] + c["fn"]) if c["tp"] else 0.0
            cells.append(f"{kind} {f1:.4f}")
        print(f"dev (full path) {label:10s}: " + "  ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    t0 = time.perf_counter()
    clusters = build_clusters(corpus_lines([args.data / TRAIN, *(args.data / f for f in UNLABELLED)]))
    print(f"clusters: {len(clusters)} words ({time.perf_counter() - t0:.1f} s)")
    train_docs, dev_docs = T.read_conll(args.data / TRAIN), T.read_conll(args.data / DEV)
    one = Config()
    configs = (one, replace(one, runtime_mask=(1 << RUNTIME_TEMPLATES) - 1))
    trained = T.train_stages(configs, clusters, train_docs, dev_docs, epochs=args.epochs)
    stages = [Stage(c, t.weights, t.transitions) for c, t in zip(configs, trained, strict=False)]
    save_model(args.out, stages, clusters)
    print(f"training time {time.perf_counter() - t0:.1f} s; wrote {args.out} "
          f"({args.out.stat().st_size / 1e6:.1f} MB)")
    full_path_scores(dev_docs, EntityTagger(read_model(args.out)))


if __name__ == "__main__":
    main()
