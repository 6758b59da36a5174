"""The learned entity tagger (agents/tag/ner): tokenizer, features, decoding, the model file,
and what it does with the odd shapes of real news. Nothing here trains the shipped model."""

from __future__ import annotations

import gzip
import itertools
import json
import random
from pathlib import Path

import numpy as np
import pytest

from agents.tag.entities import EntityTagger
from agents.tag.ner import kernel
from agents.tag.ner.lexicon import SLOTS, attributes, case_of, flags_of, shapes
from agents.tag.ner.model import (
    MODEL_FILE,
    Config,
    NerModel,
    Stage,
    allowed_transitions,
    label_names,
    load_model,
    read_model,
    save_model,
    spans_of,
)
from agents.tag.ner.tokens import TOKEN, tokenize
from agents.tag.ner.train import Doc, build_dataset, decode, title_cased

SHARED = Path(__file__).resolve().parents[3] / "shared"  # ../shared beside the repo, in CI too
TYPES = ("PER", "ORG", "LOC", "MISC")


@pytest.fixture(scope="module")
def tagger() -> EntityTagger:
    return EntityTagger()


def _kinds(tagger: EntityTagger, title: str, text: str) -> dict[str, str]:
    return {e.name: e.kind for e in tagger.entities(title, text)}


def _random_model(
    seed: int, bits: int = 12, stage_two: bool = False
) -> tuple[Config, np.ndarray, np.ndarray]:
    """Random weights (mostly O) and transitions: for tests of code paths, not of tags."""
    rng = np.random.default_rng(seed)
    mask = (1 << kernel.RUNTIME_TEMPLATES) - 1 if stage_two else (1 << kernel.STAGE_ONE_TEMPLATES) - 1
    config = Config(bits=bits, runtime_mask=mask)
    n = len(label_names(TYPES))
    weights = rng.normal(size=(1 << bits, n)).astype(np.float32)
    weights[:, 0] += 2.0  # mostly O, as a trained model is
    return config, weights, rng.normal(size=(n + 1, n + 1)).astype(np.float32)


# ----------------------------------------------------------------------------- tokens

_PIECES = [
    "Taiwan", "U.S.", "Mr.", " Mr. ", "Inc", ".", " ", "\n", "'s", "’s", "s", "'", "’", "-", "--",
    "...", "1,000", "5-1/2", "/", "2", "S&P", "&", "x", "é", "_", "https://www.bbc.co.uk/news/a.",
    "www.a.b", "john@x.com", "@", ":", "(", ")", "W.", " J", "A", "1996-08-22", "²", "中文", "\t",
    "O'Neill", "Jean-Luc", "\u00a0", "“", "”",
]  # fmt: skip


def test_compiled_tokenizer_is_the_regex() -> None:
    rnd = random.Random(5)
    texts = ["".join(rnd.choice(_PIECES) for _ in range(rnd.randint(0, 12))) for _ in range(20000)]
    for text in texts:
        assert tokenize(text) == TOKEN.findall(text), repr(text)


def test_tokens_of_news_text() -> None:
    text = "Taiwan Strait's “calm” ended; U.S. Defense Secretary Lloyd Austin met Jean-Luc O'Neill."
    assert tokenize(text) == [
        "Taiwan", "Strait", "'s", "“", "calm", "”", "ended", ";", "U.S.", "Defense", "Secretary",
        "Lloyd", "Austin", "met", "Jean-Luc", "O'Neill", ".",
    ]  # fmt: skip
    assert tokenize("See https://example.com/a-b?c=1. Mail a.b@c.org now") == [
        "See", "https://example.com/a-b?c=1", ".", "Mail", "a.b@c.org", "now",
    ]  # fmt: skip
    assert tokenize("Mr. Smith of S&P paid $1,000.50 on 1996-08-22") == [
        "Mr.", "Smith", "of", "S&P", "paid", "$", "1,000.50", "on", "1996-08-22",
    ]  # fmt: skip


def test_scan_gives_offsets_and_line_starts() -> None:
    model = load_model()
    text = "Kenya  won\nin Nairobi."
    wid, starts, ends, newline = model.lexicon.scan(text)
    assert [text[a:b] for a, b in zip(starts, ends, strict=True)] == ["Kenya", "won", "in", "Nairobi", "."]
    assert newline.tolist() == [0, 0, 1, 0, 0]
    assert wid[3] == model.lexicon.ids["Nairobi"] and len(set(wid.tolist())) == 5


# ----------------------------------------------------------------------------- features


def test_attributes_of_a_word() -> None:
    values = dict(zip(SLOTS, attributes("Taiwan’s", {"taiwan's": (1, 2, 3)}), strict=True))
    assert values["word"] == "Taiwan's" and values["lower"] == "taiwan's"
    assert values["shape"] == "Xxxxx’x" and values["short_shape"] == "Xx’x"  # runs cut to 4
    assert (values["p3"], values["s3"], values["p4"]) == ("tai", "n's", "taiw")
    assert (values["cluster_a"], values["cluster_c"]) == ("1", "3")
    assert values["case"] == "init" and values["length"] == "8"
    places = dict(zip(SLOTS, attributes("Kenya", {}), strict=True))
    assert places["gaz_place"] == "s" and places["cluster_a"] is None
    assert dict(zip(SLOTS, attributes("Lloyd", {}), strict=True))["first_name"] == "y"
    assert dict(zip(SLOTS, attributes("1996-08-22", {}), strict=True))["word"] == "0000-00-00"
    assert shapes("Jean-Luc") == ("Xxxx-Xxx", "Xx-Xx") and shapes("AAAAAAAA") == ("XXXX", "X")


def test_case_and_flags() -> None:
    bits = kernel.FLAG_BITS
    words = ("nato", "NATO", "Nato", "iPhone", "1996", "b2b", ",")
    assert [kernel.CASE_NAMES[case_of(w)] for w in words] == [
        "lower", "caps", "init", "mixed", "digit", "alnum", "punct",
    ]  # fmt: skip
    assert flags_of("U.S.") & bits["caps2"] and not flags_of("U.S.") & bits["has_lower"]
    assert flags_of(".") & bits["sent_end"] and flags_of("“") & bits["opener"]
    assert flags_of("https://x.org/a") & bits["url"] and flags_of("a@b.com") & bits["url"]


def test_lexicon_stores_the_hashes_of_the_attributes() -> None:
    """The compiled spelling and the dictionary rows give the hashes of ``attributes``."""
    model = load_model()
    lexicon = model.lexicon
    words = ["Taiwan", "taiwan", "NATO", "İstanbul", "Zürich", "O’Neill", "U.S.", "1,000", "—",
             "https://a.b/c", "Jean-Luc", "x²", "Ministry", "said", "Pelosi", "A" * 20]  # fmt: skip
    lexicon.scan(" ".join(words))
    for word in words:
        k = lexicon.ids[word]
        want = [0 if v is None else kernel.hash_str(v) for v in attributes(word, lexicon.clusters)]
        assert lexicon._arrays.attrs[k].tolist() == want, word
        assert lexicon._arrays.flags[k] == flags_of(word) and lexicon._arrays.case[k] == case_of(word), word


def test_lexicon_grows_and_rebinds() -> None:
    config, weights, transitions = _random_model(1)
    model = NerModel([Stage(config, weights, transitions)], {})
    text = " ".join(f"Word{k} word{k}" for k in range(3000))
    first = model.tag(text)
    assert len(model.lexicon.ids) > 6000  # the word table was grown and re-hashed several times
    again = model.tag(text)
    assert first[2] == again[2]
    wid, _, _, _ = model.lexicon.scan(text)
    assert (wid >= 0).all() and len(set(wid.tolist())) == 6000


def test_inactive_stretches_and_sandwiched_words() -> None:
    """Only capitalised words and short lower-case runs between them are scored."""
    config, weights, transitions = _random_model(2)
    model = NerModel([Stage(config, weights, transitions)], {})
    text = "the talks went on in the hall of the Bank of England until Monday at the Bank"
    wid, _, _, newline = model.lexicon.scan(text)
    _, _, active, _, _, _ = model.kernels[0].features(wid, newline)
    words = text.split()
    assert [words[i] for i in active] == ["Bank", "of", "England", "until", "Monday", "at", "the", "Bank"]


# ----------------------------------------------------------------------------- decoding


def test_viterbi_is_the_best_path() -> None:
    rng = np.random.default_rng(3)
    n_labels = 5
    allowed = allowed_transitions(2)
    for _ in range(50):
        n = int(rng.integers(1, 5))
        e = rng.normal(size=(n, n_labels)).astype(np.float32)
        t = (rng.normal(size=(n_labels + 1, n_labels + 1)) + allowed).astype(np.float32)

        def score(path: tuple[int, ...], e: np.ndarray = e, t: np.ndarray = t) -> float:
            steps = zip((n_labels, *path), (*path, n_labels), strict=True)
            return float(sum(e[i, y] for i, y in enumerate(path)) + sum(t[a, b] for a, b in steps))

        best = max(itertools.product(range(n_labels), repeat=n), key=score)
        assert tuple(kernel.viterbi_path(e, t).tolist()) == best


def test_hand_made_weights_decode_as_expected() -> None:
    """A tiny weight table: every feature votes O, but the features of "Kenya" (at offset 0)
    vote B-LOC and those of "Nairobi" B-PER; I-X after O is impossible."""
    config = Config(bits=10, runtime_mask=0, offsets={"0": ("word",)})
    n = len(label_names(TYPES))
    weights = np.zeros((1 << 10, n), dtype=np.float32)
    weights[:, 0] = 0.1
    model = NerModel([Stage(config, weights, np.zeros((n + 1, n + 1), np.float32))], {})
    seeds, _ = config.seeds()
    for word, label in (("Kenya", "B-LOC"), ("Nairobi", "B-PER")):
        bucket = kernel_bucket(kernel.hash_str(word), int(seeds[2, SLOTS.index("word")]), 10)
        weights[bucket] = 0
        weights[bucket, label_names(TYPES).index(label)] = 1.0
    model = NerModel([Stage(config, weights, np.zeros((n + 1, n + 1), np.float32))], {})
    _, _, spans = model.tag("Kenya and Nairobi Kenya met")
    assert spans == [(0, 1, 2), (2, 3, 0), (3, 4, 2)]


def kernel_bucket(value: int, seed: int, bits: int) -> int:
    """The kernel's bucket of a word feature: splitmix64's finaliser of value ^ seed."""
    x = value ^ seed
    m = (1 << 64) - 1
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & m
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & m
    x ^= x >> 31
    return x >> (64 - bits)


def test_tagging_sees_the_features_training_sees() -> None:
    """Per-word cached sums (tagging) and explicit feature lists (training) give the same
    labels, for stage one and for stage two on stage one's labels."""
    one, w1, t1 = _random_model(4)
    two, w2, t2 = _random_model(5, stage_two=True)
    model = NerModel([Stage(one, w1, t1), Stage(two, w2, t2)], {"kenya": (1, 2, 3)})
    rows = _bbc(12)
    allowed = allowed_transitions(len(TYPES))
    for title, text in rows:
        doc = f"{title}\n{text}"
        wid, _, _, newline = model.lexicon.scan(doc)
        docs = [Doc(wid, newline, np.zeros(len(wid), np.int32))]
        first = kernel.cascade(model.kernels[:1], wid, newline)
        both = kernel.cascade(model.kernels, wid, newline)
        for k, want, stage_one in ((0, first, None), (1, both, [first])):
            data = build_dataset(docs, model.kernels[k], stage_one)
            masked = (model.stages[k].transitions + allowed).astype(np.float32)
            labels = np.zeros(len(wid), np.int32)
            weights = model.stages[k].weights
            got = kernel.decode_segments(data.seg_ptr, data.tok_ptr, data.feats, weights, masked)
            labels[data.doc_active[0]] = got
            assert labels.tolist() == want.tolist(), (title, k)


def test_spans_of_labels() -> None:
    b_per, i_per, b_loc, i_loc = 1, 2, 5, 6
    labels = np.array([0, b_per, i_per, b_per, i_loc, 0, i_loc, i_loc, b_loc], dtype=np.int32)
    assert spans_of(labels) == [(1, 3, 0), (3, 4, 0), (4, 5, 2), (6, 8, 2), (8, 9, 2)]


# ----------------------------------------------------------------------------- the model file


def test_shipped_model_loads_without_pickle() -> None:
    from importlib.resources import files

    path = files("agents.tag") / "data" / MODEL_FILE
    with path.open("rb") as fh, np.load(fh, allow_pickle=False) as data:
        header = json.loads(data["header"].tobytes())
        assert data["weights_0"].dtype == np.float16
    assert len(header["stages"]) == 2 and header["stages"][0]["types"] == list(TYPES)
    model = load_model()
    assert model is load_model() and len(model.kernels) == 2
    assert model.stages[1].config.runtime_mask == (1 << kernel.RUNTIME_TEMPLATES) - 1
    assert len(model.lexicon.clusters) > 10000


def test_save_and_read_round_trip(tmp_path: Path) -> None:
    config, weights, transitions = _random_model(6)
    weights = weights.astype(np.float16).astype(np.float32)  # what the file keeps
    stages = [Stage(config, weights, transitions)]
    clusters = {"kenya": (1, 2, 3), "taiwan": (4, 5, 6)}
    path = tmp_path / "m.npz"
    save_model(path, stages, clusters)
    again = read_model(path)
    assert again.lexicon.clusters == clusters and again.stages[0].config == config
    text = "Officials in Nairobi and Taipei met KENYA AIRWAYS staff"
    assert again.tag(text)[2] == NerModel(stages, clusters).tag(text)[2]


# ----------------------------------------------------------------------------- real news


def test_title_case_and_shouted_headlines(tagger: EntityTagger) -> None:
    body = ("Taiwan said on Friday that Chinese warships had left the Taiwan Strait after two days "
            "of drills. President Lai Ching-te thanked the United States for its support.")  # fmt: skip
    for title in ("China Ends Drills Around Taiwan As Lai Thanks Washington",
                  "CHINA ENDS DRILLS AROUND TAIWAN AS LAI THANKS WASHINGTON"):
        ents = tagger.entities(title, body)
        found = {e.name: e.kind for e in ents}
        assert found.get("China") == "place" and found.get("Taiwan") == "place", (title, found)
        assert found.get("Taiwan Strait") == "place" and found.get("Lai Ching-te") == "person", found
        assert found.get("Washington") == "place", found
        assert not any(w in name.upper() for name in found for w in ("DRILLS", "ENDS", "THANKS")), found
        counts = {e.name: e.count for e in ents}
        assert counts["Taiwan"] == 2 and counts["Lai Ching-te"] == 2  # the headline's count too


def test_curly_quotes_hyphens_and_possessives(tagger: EntityTagger) -> None:
    text = ("“We will not back down,” said Jean-Claude Juncker, as the Taiwan Strait’s calm held and "
            "Beijing’s envoy left Brussels for “Berlin”.")  # fmt: skip
    found = _kinds(tagger, "", text)
    assert found.get("Jean-Claude Juncker") == "person"
    assert found.get("Taiwan Strait") == "place" and found.get("Beijing") == "place"
    assert found.get("Brussels") == "place" and found.get("Berlin") == "place"
    assert not any(c in name for name in found for c in "“”‘’") and not any(n.endswith("'s") for n in found)


def test_urls_and_tickers_are_not_names(tagger: EntityTagger) -> None:
    text = ("Tesla Inc (NASDAQ: TSLA) and Ford (NYSE: F) rose; $AAPL fell. Read more at "
            "https://www.reuters.com/business/Tesla-Ford-Shares and write to News@Reuters.com.")  # fmt: skip
    found = _kinds(tagger, "", text)
    assert found.get("Tesla Inc") == "org" and found.get("Ford") == "org"
    assert not {"TSLA", "F", "AAPL"} & set(found), found
    assert not any("http" in n or "www" in n or "@" in n or "Reuters.com" in n for n in found), found


def _bbc(count: int) -> list[tuple[str, str]]:
    path = SHARED / "data" / "bbc_news_2225.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in itertools.islice(fh, 0, 2225, 37)]
    return [(row["title"] or "", row["text"] or "") for row in rows[:count]]


def test_names_in_real_articles_look_like_names(tagger: EntityTagger) -> None:
    """Seeds and BBC articles: every name has a capital, starts and ends with a letter or
    digit, has no URL, no possessive and at most six words."""
    docs = _bbc(60)
    for seed in sorted((SHARED / "seeds").glob("*.txt")):
        title, _, body = seed.read_text(encoding="utf-8").partition("\n")
        docs.append((title, body))
    for title, body in docs:
        for e in tagger.entities(title, body):
            name = e.name
            assert e.kind in ("person", "org", "place") and e.count >= 1
            assert any(c.isupper() for c in name) and name[0].isalnum() and name[-1].isalnum(), name
            assert len(name.split()) <= 6 and "http" not in name and "www." not in name, name
            assert not name.endswith(("'s", "’s")) and "\n" not in name, name


def test_title_cased_training_variant() -> None:
    doc = [[("SOCCER", "O"), ("-", "O"), ("JAPAN", "I-LOC"), ("WIN", "O"), ("U.S.", "I-LOC")],
           [("Japan", "I-LOC"), ("won", "O")]]  # fmt: skip
    assert title_cased(doc) == [
        [("Soccer", "O"), ("-", "O"), ("Japan", "I-LOC"), ("Win", "O"), ("U.S.", "I-LOC")],
        [("Japan", "I-LOC"), ("won", "O")],
    ]
    assert title_cased([[("Japan", "I-LOC"), ("won", "O")]]) is None


def test_training_decode_matches_kernel() -> None:
    """``train.decode`` on a dataset is ``decode_segments`` with the masked transitions."""
    config, weights, transitions = _random_model(7)
    model = NerModel([Stage(config, weights, transitions)], {})
    wid, _, _, newline = model.lexicon.scan("Kenya and Uganda met in Kampala on Monday")
    data = build_dataset([Doc(wid, newline, np.zeros(len(wid), np.int32))], model.kernels[0])
    trained = type("Trained", (), {"weights": weights, "transitions": transitions})
    got = decode(data, trained)  # type: ignore[arg-type]
    labels = np.zeros(len(wid), np.int32)
    labels[data.doc_active[0]] = got
    assert labels.tolist() == kernel.cascade(model.kernels, wid, newline).tolist()


def test_cached_word_sums_are_the_plain_sums() -> None:
    """Labels from the per-word cached sums equal those summed afresh for every token."""
    one, w1, t1 = _random_model(8)
    two, w2, t2 = _random_model(9, stage_two=True)
    model = NerModel([Stage(one, w1, t1), Stage(two, w2, t2)], {})
    for title, text in _bbc(8):
        wid, _, _, newline = model.lexicon.scan(f"{title}\n{text}")
        cached = kernel.cascade(model.kernels, wid, newline)
        for k in model.kernels:
            k.cache_vectors = False
        plain = kernel.cascade(model.kernels, wid, newline)
        for k in model.kernels:
            k.cache_vectors = True
        assert cached.tolist() == plain.tolist()
