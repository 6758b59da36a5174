"""What the entity tagger knows about a word, worked out once per word and process.

Each distinct token gets an id, and under that id its *attributes* (value hashes of its
form, lower-case form, shape, affixes, word clusters, frequency band, case, gazetteer
memberships: the features of one word) and its flags (case, sentence punctuation, URL...)
for the compiled kernel. The lower-case form gets an id of its own, for what a document
says about a word elsewhere ("Apple" in a headline, "apple" in the body).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from agents.tag.gazetteer import load_gazetteer
from agents.tag.ner import kernel
from agents.tag.ner.tokens import ABBREVIATIONS, tokenize
from agents.wordlists import load_words
from streams.words import zipf

__all__ = [
    "CASE_NAMES",
    "SLOTS",
    "Lexicon",
    "attributes",
    "case_of",
    "flags_of",
    "gazetteer_marks",
]

# The attribute slots, in order: the model's header lists them, and the kernel's offset
# templates say which slots count at which offset.
SLOTS = (
    "word", "lower", "shape", "short_shape",
    "p1", "p2", "p3", "p4", "s1", "s2", "s3", "s4",
    "cluster_a", "cluster_b", "cluster_c", "zipf", "case", "length",
    "gaz_place", "gaz_org", "gaz_person", "first_name", "org_suffix", "org_head", "title",
    "person_cue", "demonym", "month_day",
)  # fmt: skip
CASE_NAMES: tuple[str, ...] = kernel.CASE_NAMES
_CASE = {name: i for i, name in enumerate(CASE_NAMES)}
_CLUSTER_A = SLOTS.index("cluster_a")  # cluster_a, cluster_b, cluster_c, zipf: in a row
_MARKS = SLOTS.index("length") + 1  # the gazetteer slots, to the end
_NO_ROW = [0] * (3 + len(SLOTS) - _MARKS)
SENT_END = frozenset([".", "!", "?", "...", "…"])
SOFT_END = frozenset([":", ";", "-", "--", "—", "–", "|"])
OPENERS = frozenset(['"', "'", "“", "”", "‘", "’", "(", ")", "[", "]", "«", "»", "`", "``", "''"])
_DIGITS = str.maketrans("0123456789’‘", "0000000000''")
_MAX_WORDS = 1 << 17  # then the cache starts again: ~1 KB a word (a long-running stream)


@cache
def gazetteer_marks() -> dict[str, dict[str, str]]:
    """slot -> lower-case token -> where it stands in a listed name of that kind: "s" a whole
    one-word name, "f" first, "m" inside, "l" last (letters sorted, "fl" for both)."""
    gaz = load_gazetteer()
    marks: dict[str, dict[str, set[str]]] = {"gaz_place": {}, "gaz_org": {}, "gaz_person": {}}
    for surface, (kind, _) in gaz.names.items():
        words = [w.lower() for w in tokenize(surface)]
        table = marks[f"gaz_{kind}"]
        if len(words) == 1:
            table.setdefault(words[0], set()).add("s")
            continue
        for i, word in enumerate(words):
            table.setdefault(word, set()).add("f" if i == 0 else "l" if i == len(words) - 1 else "m")
    out = {slot: {w: "".join(sorted(s)) for w, s in table.items()} for slot, table in marks.items()}
    out["first_name"] = {name.lower(): "y" for name in gaz.first_names}
    lists = {
        "org_suffix": load_words("agents.tag", "org_suffixes"),  # "Inc", "Army"
        "org_head": load_words("agents.tag", "org_heads"),  # "Ministry", "Bank"
        "title": load_words("agents.tag", "titles"),  # "Minister", "Mr"
        "person_cue": load_words("agents.tag", "person_cues"),  # "striker", "spokesman"
        "demonym": load_words("agents.tag", "demonyms"),  # "Chinese"
        "month_day": load_words("agents.tag", "months_days"),  # "May", "Friday"
    }
    for slot, listed in lists.items():
        out[slot] = {word.lower(): "y" for word in listed}
    return out


def _shape_char(ch: str) -> str:
    return "X" if ch.isupper() else "x" if ch.isalpha() else "d" if ch.isdigit() else ch


def shapes(word: str) -> tuple[str, str]:
    """(long shape, short shape): each character as X, x, d or itself, runs cut to four
    characters (at most 12 in all) or to one (at most 8): "Jean-Luc" -> ("Xxxx-Xxx", "Xx-Xx")."""
    long: list[str] = []
    short: list[str] = []
    run = 0
    prev = ""
    for ch in map(_shape_char, word):
        run = run + 1 if ch == prev else 1
        if run <= 4 and len(long) < 12:
            long.append(ch)
        if run == 1 and len(short) < 8:
            short.append(ch)
        prev = ch
    return "".join(long), "".join(short)


def case_of(word: str) -> int:
    """Index into CASE_NAMES, by which cased letters and digits the word has."""
    upper = any(map(str.isupper, word))
    lower = any(map(str.islower, word))
    digit = any(map(str.isdigit, word))
    if upper:
        return _CASE["caps"] if not lower else _CASE["init"] if word[0].isupper() else _CASE["mixed"]
    if lower:
        return _CASE["alnum"] if digit else _CASE["lower"]
    return _CASE["digit"] if digit else _CASE["punct"]


def flags_of(word: str) -> int:
    bits = kernel.FLAG_BITS
    f = 0
    upper = sum(map(str.isupper, word))
    f |= bits["has_upper"] if upper else 0
    f |= bits["caps2"] if upper >= 2 else 0
    f |= bits["has_lower"] if any(map(str.islower, word)) else 0
    f |= bits["has_digit"] if any(map(str.isdigit, word)) else 0
    f |= bits["long"] if sum(map(str.isalpha, word)) >= 4 else 0
    if not any(map(str.isalnum, word)):
        f |= bits["sent_end"] if word in SENT_END else 0
        f |= bits["soft_end"] if word in SOFT_END else 0
        f |= bits["opener"] if word in OPENERS else 0
    if word.startswith(("http://", "https://", "www.")) or ("@" in word and "." in word):
        f |= bits["url"]
    return f


def zipf_band(lower: str) -> int:
    """wordfreq's Zipf frequency in half-unit bands from 2 (0 = not an English word)."""
    z = zipf(lower) if lower.isalpha() else 0.0
    return 0 if z <= 0 else max(1, min(14, int(z * 2) - 3))


def attributes(word: str, clusters: Mapping[str, Sequence[int]]) -> list[str | None]:
    """The value of every slot of SLOTS for ``word`` (None: no value). The definition: the
    lexicon computes the same hashes faster (``kernel.spell`` and ``dictionary_values``)."""
    norm = word.translate(_DIGITS)
    lower = "".join(ch.lower()[:1] for ch in norm)  # by character, as kernel.spell does
    n = len(lower)
    shape, short = shapes(word)
    head, marks = dictionary_values(norm.lower(), clusters)
    return [
        norm, lower, shape, short,
        *(lower[:k] if n > k else None for k in range(1, 5)),
        *(lower[-k:] if n > k else None for k in range(1, 5)),
        *head, CASE_NAMES[case_of(word)], str(min(n, 8)), *marks,
    ]  # fmt: skip


def dictionary_values(
    lower: str, clusters: Mapping[str, Sequence[int]], with_band: bool = True
) -> tuple[list[str | None], list[str | None]]:
    """The slots from cluster_a to zipf (zipf None unless ``with_band``), and the gazetteer
    slots, of a lower-case form."""
    cl = clusters.get(lower)
    band = zipf_band(lower) if with_band else 0
    head: list[str | None] = [str(cl[0]), str(cl[1]), str(cl[2])] if cl else [None, None, None]
    head.append(str(band) if band else None)
    return head, [table.get(lower) for table in _mark_tables()]


def dictionary_rows(clusters: Mapping[str, Sequence[int]]) -> dict[str, list[int]]:
    """Lower-case form -> the hashed cluster and gazetteer slots (``dictionary_values`` less
    the zipf band), for every form that has one: one lookup per new word instead of eleven."""
    forms = set(clusters).union(*_mark_tables())
    rows = {}
    for lower in forms:
        head, marks = dictionary_values(lower, clusters, with_band=False)
        rows[lower] = [0 if v is None else kernel.hash_str(v) for v in (*head[:3], *marks)]
    return rows


@cache
def _mark_tables() -> list[dict[str, str]]:
    """The gazetteer tables in SLOTS order (the slots after "length")."""
    marks = gazetteer_marks()
    return [marks[slot] for slot in SLOTS[SLOTS.index("length") + 1 :]]


@dataclass(frozen=True, slots=True)
class _Arrays:
    """The per-word arrays, first dimension the word id: shared by the models but for
    ``vecs`` and ``ready``, one each per model."""

    attrs: np.ndarray
    flags: np.ndarray
    case: np.ndarray
    zipf: np.ndarray
    lower_id: np.ndarray
    whash: np.ndarray
    vecs: tuple[np.ndarray, ...]
    ready: tuple[np.ndarray, ...]


class Lexicon:
    """Word ids and per-word arrays, grown as new words come; bound to the kernel models
    that read them (stage one and stage two share all but their weight sums)."""

    def __init__(self, models: Sequence[kernel.Model], clusters: Mapping[str, Sequence[int]]) -> None:
        self.models = list(models)
        self.clusters = clusters
        self._rows = dictionary_rows(clusters)
        self.reset()

    def reset(self) -> None:
        """Forget every word (a long-running stream keeps at most _MAX_WORDS)."""
        self.ids: dict[str, int] = {}
        self.lower_ids: dict[str, int] = {}
        self._keys = np.zeros(1 << 12, dtype=np.uint64)  # the compiled word table: hash -> id
        self._values = np.zeros(1 << 12, dtype=np.int32)
        self._buffers = [np.zeros(0, dtype=np.int32)] * 3 + [np.zeros(0, dtype=np.uint8)]
        self._arrays = self._allocate(1024)
        self._lower_arrays = [np.zeros(1024, dtype=np.int32) for _ in range(4)]
        self._lower_arrays.append(np.zeros(8 * 1024, dtype=np.int32))  # vote counts, 8 a form
        self._bind()
        for pseudo in ("\x00<line-start>", "\x00<line-end>"):  # kernel.BOL, kernel.EOL
            wid = len(self.ids)
            self.ids[pseudo] = wid
            self._arrays.attrs[wid, SLOTS.index("word")] = kernel.hash_str(pseudo)
            self._arrays.attrs[wid, SLOTS.index("lower")] = kernel.hash_str(pseudo)
            self._arrays.lower_id[wid] = self.lower_ids.setdefault(pseudo, len(self.lower_ids))

    def _allocate(self, cap: int) -> _Arrays:
        return _Arrays(
            attrs=np.zeros((cap, len(SLOTS)), dtype=np.uint64),
            flags=np.zeros(cap, dtype=np.int32),
            case=np.zeros(cap, dtype=np.int32),
            zipf=np.zeros(cap, dtype=np.int32),
            lower_id=np.zeros(cap, dtype=np.int32),
            whash=np.zeros(cap, dtype=np.uint64),
            vecs=tuple(np.zeros((cap, kernel.VECTOR_SLOTS, m.n_labels), np.float32) for m in self.models),
            ready=tuple(np.zeros(cap, dtype=np.uint16) for _ in self.models),
        )

    def _bind(self) -> None:
        a = self._arrays
        stamp, n_lower, n_capmid, n_caps, n_votes = self._lower_arrays
        for k, model in enumerate(self.models):
            model.bind(a.attrs, a.flags, a.case, a.zipf, a.lower_id, a.vecs[k], a.ready[k], a.whash,
                       stamp, n_lower, n_capmid, n_caps, n_votes, self._keys, self._values)

    def _add(self, word: str) -> int:
        """A new word's id, its attributes stored (the arrays grown, and bound, if full)."""
        wid = len(self.ids)
        lower = word.translate(_DIGITS).lower()
        lid = self.lower_ids.setdefault(lower, len(self.lower_ids))
        grow = wid >= len(self._arrays.flags) or lid >= len(self._lower_arrays[0])
        if grow or 2 * (wid + 1) > len(self._keys):
            self._grow(wid, lid)
        self.models[0].add_word(wid, word, self._rows.get(lower, _NO_ROW), lid, zipf_band(lower),
                                SENT_END, SOFT_END, OPENERS)
        self.ids[word] = wid
        return wid

    def _grow(self, wid: int, lid: int) -> None:
        old = self._arrays
        if wid >= len(old.flags):
            cap = 2 * len(old.flags)
            new = self._allocate(cap)
            for name in ("attrs", "flags", "case", "zipf", "lower_id", "whash"):
                getattr(new, name)[: len(old.flags)] = getattr(old, name)
            for mine, theirs in zip(new.vecs + new.ready, old.vecs + old.ready, strict=True):
                mine[: len(old.flags)] = theirs
            self._arrays = new
        if lid >= len(self._lower_arrays[0]):
            self._lower_arrays = [np.concatenate([a, np.zeros_like(a)]) for a in self._lower_arrays]
        rehash = 2 * (wid + 1) > len(self._keys)
        if rehash:
            self._keys = np.zeros(2 * len(self._keys), dtype=np.uint64)
            self._values = np.zeros(len(self._keys), dtype=np.int32)
        self._bind()
        if rehash:
            self.models[0].rehash(wid)

    def scan(self, text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(word ids, starts, ends, newline) of the tokens of ``text``; new words added."""
        if len(self.ids) >= _MAX_WORDS:
            self.reset()
        if len(self._buffers[0]) < len(text):
            size = max(len(text), 2 * len(self._buffers[0]), 4096)
            self._buffers = [np.zeros(size, np.int32) for _ in range(3)] + [np.zeros(size, np.uint8)]
        n = kernel.scan(text, ABBREVIATIONS, self._keys, self._values, *self._buffers)
        wid, starts, ends, newline = (b[:n].copy() for b in self._buffers)
        new = np.flatnonzero(wid < 0)
        if len(new):
            get = self.ids.get
            for i in new.tolist():
                word = text[starts[i] : ends[i]]
                known = get(word)
                wid[i] = known if known is not None else self._add(word)
        return wid, starts, ends, newline
