"""The entity model: its configuration, its file, and tagging a text with it.

The file (``agents/tag/data/ner_model.npz``, read with ``allow_pickle=False``) holds a JSON
header (labels, hash size, which word slots count at which offset, the context templates),
the weight table, the label transitions and the word clusters. ``load_model`` reads it once
per process.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from agents.tag.ner import kernel
from agents.tag.ner.lexicon import SLOTS, Lexicon

__all__ = [
    "MODEL_FILE",
    "Config",
    "NerModel",
    "Stage",
    "allowed_transitions",
    "label_names",
    "load_model",
    "spans_of",
]

MODEL_FILE = "ner_model.npz"
# Offsets -2..2 and the word slots that are features there.
_NEAR = ("word", "lower", "short_shape", "s3", "cluster_a", "cluster_b", "cluster_c", "zipf", "case",
         "gaz_place", "gaz_org", "gaz_person", "first_name", "org_suffix", "org_head", "title",
         "person_cue", "demonym", "month_day")  # fmt: skip
_FAR = ("lower", "case", "cluster_b", "gaz_place", "gaz_org", "first_name", "org_suffix", "title")


@dataclass(frozen=True)
class Config:
    """What a model's features are; saved in its header."""

    types: tuple[str, ...] = ("PER", "ORG", "LOC", "MISC")
    bits: int = 18
    offsets: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {"-2": _FAR, "-1": _NEAR, "0": SLOTS, "1": _NEAR, "2": _FAR}
    )
    runtime_mask: int = (1 << kernel.STAGE_ONE_TEMPLATES) - 1  # stage two: all RUNTIME_TEMPLATES

    def seeds(self) -> tuple[np.ndarray, np.ndarray]:
        """(offset x slot seeds, 0 where a slot is no feature; context template seeds)."""
        seeds = np.zeros((5, len(SLOTS)), dtype=np.uint64)
        for d in range(5):
            for slot in self.offsets.get(str(d - 2), ()):
                seeds[d, SLOTS.index(slot)] = kernel.hash_str(f"{d - 2}:{slot}")
        names = [f"context:{r}" for r in range(kernel.RUNTIME_TEMPLATES)]
        return seeds, np.array([kernel.hash_str(name) for name in names], dtype=np.uint64)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Config:
        return cls(
            types=tuple(data["types"]),
            bits=int(data["bits"]),
            offsets={k: tuple(v) for k, v in data["offsets"].items()},
            runtime_mask=int(data["runtime_mask"]),
        )


def label_names(types: tuple[str, ...]) -> list[str]:
    """O, then B-X and I-X per type: label ``1 + 2t`` begins type ``t``."""
    return ["O"] + [f"{p}-{t}" for t in types for p in ("B", "I")]


def allowed_transitions(n_types: int) -> np.ndarray:
    """(labels + 1)^2, last row and column the segment boundary: 0 where the transition may
    happen, -1e30 where it may not (I-X only after B-X or I-X)."""
    n = 1 + 2 * n_types
    mask = np.zeros((n + 1, n + 1), dtype=np.float32)
    for t in range(n_types):
        inside = 2 + 2 * t
        for prev in range(n + 1):
            if prev not in (inside - 1, inside):
                mask[prev, inside] = -1e30
    return mask


def spans_of(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """(first token, end token, type index) of the names in a label array."""
    return kernel.spans(np.ascontiguousarray(labels, dtype=np.int32))  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Stage:
    """One model of the cascade: stage two also sees stage one's labels."""

    config: Config
    weights: np.ndarray  # (2 ** bits, labels)
    transitions: np.ndarray  # (labels + 1, labels + 1), the last the segment boundary


class NerModel:
    """A loaded model: ``tag(text)`` gives the names of a text as token spans."""

    def __init__(self, stages: list[Stage], clusters: dict[str, tuple[int, int, int]]) -> None:
        self.stages = stages
        self.types = stages[0].config.types
        self.kernels = [_kernel(stage) for stage in stages]
        self.lexicon = Lexicon(self.kernels, clusters)

    def tag(self, text: str) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int, int]]]:
        """(token starts, token ends, names as (first token, end token, type index))."""
        wid, starts, ends, newline = self.lexicon.scan(text)
        return starts, ends, kernel.spans(kernel.cascade(self.kernels, wid, newline))


def _kernel(stage: Stage) -> kernel.Model:
    seeds, rt_seeds = stage.config.seeds()
    masked = (stage.transitions + allowed_transitions(len(stage.config.types))).astype(np.float32)
    return kernel.Model(
        np.ascontiguousarray(stage.weights, dtype=np.float32), masked, seeds, rt_seeds,
        stage.config.runtime_mask, SLOTS.index("lower"), SLOTS.index("cluster_b"),
    )  # fmt: skip


def save_model(path: Path, stages: list[Stage], clusters: dict[str, tuple[int, int, int]]) -> None:
    """Write the model file (weights as float16: half the size, the same tags)."""
    words = sorted(clusters)
    header = json.dumps({"format": 1, "stages": [stage.config.to_json() for stage in stages]}).encode()
    arrays: dict[str, np.ndarray] = {
        "header": np.frombuffer(header, dtype=np.uint8),
        "cluster_words": np.frombuffer("\n".join(words).encode(), dtype=np.uint8),
        "cluster_ids": np.array([clusters[w] for w in words], dtype=np.int32).reshape(-1, 3),
    }
    for k, stage in enumerate(stages):
        arrays[f"weights_{k}"] = stage.weights.astype(np.float16)
        arrays[f"transitions_{k}"] = stage.transitions.astype(np.float32)
    with path.open("wb") as fh:
        np.savez_compressed(fh, **arrays)  # type: ignore[arg-type]


def read_model(path: Any) -> NerModel:
    """A model file (``path``: a Path or an importlib resource)."""
    with path.open("rb") as fh, np.load(fh, allow_pickle=False) as data:
        header = json.loads(data["header"].tobytes().decode())
        stages = [
            Stage(Config.from_json(config), data[f"weights_{k}"], data[f"transitions_{k}"])
            for k, config in enumerate(header["stages"])
        ]
        words = data["cluster_words"].tobytes().decode().split("\n")
        ids = data["cluster_ids"].tolist()
    clusters = {w: (c[0], c[1], c[2]) for w, c in zip(words, ids, strict=True)} if ids else {}
    return NerModel(stages, clusters)


@cache
def load_model() -> NerModel:
    """The shipped model, read once per process."""
    return read_model(files("agents.tag") / "data" / MODEL_FILE)
