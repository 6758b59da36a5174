"""The fast paths of the tag, clean and alert stages give what the plain versions gave.

Each test keeps the earlier, simpler implementation as the reference and compares on inputs
built to hit the edge cases (non-ASCII letters and marks, dotted abbreviations, SHOUTED
lines, repeated phrases, long boilerplate-looking lines).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import re
from collections import Counter
from itertools import pairwise
from types import SimpleNamespace
from typing import Any, cast

import orjson
import pytest

from agents.tag import entities as E
from agents.tag import keywords as K
from streams import text as T

# ----------------------------------------------------------------------------- tokens

_WORD = re.compile(r"[^\W_]+")
_ASCII_WORD = re.compile(r"[a-z0-9]+")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


def _reference_tokens(text: str) -> list[str]:
    if text.isascii() or not _WORD.search("".join(_NON_ASCII.findall(text))):
        return _ASCII_WORD.findall(text.lower())
    return [T.fold(w) for w in _WORD.findall(text)]


_PIECES = [
    "Taiwan", "strait", "U.S.", "Mr.", "Mrs", "O'Neill", "Jean-Luc", "2024", "x²", "_", "-",
    " ", " ", "\n", "\t", "“", "”", "’s", "£5m", "—", "Zürich", "CAFÉ", "İstanbul", "ß", "\u212a",
    "\u0301", "\ud800", "中文", "naïve", "ǅ", "Ⅻ", "&", "of", "van", "The", "SHOUT", "NATO", ".",
]  # fmt: skip


def _random_texts(seed: int, count: int, pieces: list[str] = _PIECES) -> list[str]:
    rnd = random.Random(seed)
    return ["".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 12))) for _ in range(count)]


def test_tokens_match_the_regex_tokenizer() -> None:
    samples = _random_texts(1, 5000) + [chr(cp) for cp in range(0, 0x3000)]
    for text in samples:
        assert T.tokens(text) == _reference_tokens(text), repr(text)


# ----------------------------------------------------------------------------- entities

def test_mentions_stay_in_text_order_with_shouted_lines() -> None:
    text = ("TALKS IN BEIJING ON TAIWAN STRAIT\nPresident Joe Biden met Xi Jinping in Beijing.\n"
            "FRANCE AND GERMANY AGREE\nAngela Merkel said Paris and Berlin agree.")
    mentions = E.EntityTagger().mentions(text)
    assert [m.start for m in mentions] == sorted(m.start for m in mentions)
    names = {m.name for m in mentions}
    assert {"Joe Biden", "Xi Jinping", "Angela Merkel"} <= names
    assert any(text[m.start : m.end] == "BEIJING" for m in mentions)


# ----------------------------------------------------------------------------- keywords


def _reference_keywords(words: list[str], limit: int = 10) -> list[str]:
    """The keywords before the singleton shortcut: every word scored, every pair counted."""
    counts = Counter(words)
    idf = {w: K._idf(w) for w in counts if K._useful(w)}
    scores = {w: counts[w] * v for w, v in idf.items()}
    repeated = {w for w in idf if counts[w] > 1}
    pairs = Counter(p for p in pairwise(words) if p[0] in repeated and p[1] in repeated)
    taken: Counter[str] = Counter()
    for (first, second), n in pairs.items():
        if n > 1:
            scores[f"{first} {second}"] = n * K._PHRASE_BONUS * (idf[first] + idf[second]) / 2
            taken[first] += n
            taken[second] += n
    for word, n in taken.items():
        if counts[word] - n > 0:
            scores[word] = (counts[word] - n) * idf[word]
        else:
            del scores[word]
    ranked = sorted((-s, t) for t, s in scores.items() if s > 0)
    return [t for _, t in ranked[:limit]]


@pytest.mark.parametrize("seed", range(4))
def test_keywords_match_scoring_every_word(seed: int) -> None:
    rnd = random.Random(seed)
    rare = ["hypersonic", "missile", "taiwan", "strait", "zzyzxq", "tariff", "semiconductor",
            "coastguard", "drills", "sanctions", "blockade", "frigate", "qwertyuiop", "asdfgh"]
    common = ["the", "said", "government", "people", "time", "new", "world", "plan", "2024",
              "a", "of", "market", "ships", "talks", "week", "x1"]  # fmt: skip
    for _ in range(300):
        vocab = rnd.sample(rare, rnd.randint(0, len(rare))) + common
        words = [rnd.choice(vocab) for _ in range(rnd.randint(0, 120))]
        for limit in (1, 3, 10, 25):
            assert K.keywords_of(words, limit=limit) == _reference_keywords(words, limit), words


# ----------------------------------------------------------------------------- clean


def test_long_lines_get_the_rule_of_the_whole_table() -> None:
    from agents.clean import core

    def reference(line: str) -> object:
        match = core._RULES_RE.match(line)
        if match is None or match.lastgroup is None:
            return None
        rule = core.BOILERPLATE_RULES[int(match.lastgroup[1:])]
        if rule.action is core.Action.DROP and len(line) > core._MAX_DROP_CHARS:
            return None
        return rule

    starts = ["Copyright 2005 BBC. ", "© 2024 ", "Posted in: ", "Related: ", "Photo via ",
              "Reuters. All rights reserved. ", "Click here ", "Reporting by ", "Prose ", ""]
    for start in starts:
        for length in (0, 100, 281, 300, 301, 450):
            line = start + "x" * max(0, length - len(start))
            assert core._rule_for(line) is reference(line), line[:40]


# ----------------------------------------------------------------------------- stage, logs, alert


def test_startup_spinner_handler_is_dropped_and_root_level_restored() -> None:
    from faust.utils.terminal.spinners import Spinner, SpinnerHandler

    from streams.logs import drop_startup_spinner

    root = logging.Logger("test-root")
    text = logging.StreamHandler()
    text.setLevel(logging.WARNING)
    root.addHandler(text)
    root.addHandler(SpinnerHandler(Spinner(), level=logging.DEBUG))
    root.setLevel(logging.DEBUG)  # what the worker does at --loglevel warn
    drop_startup_spinner(root)
    assert root.handlers == [text] and root.level == logging.WARNING
    root.setLevel(logging.INFO)
    drop_startup_spinner(root)  # no spinner: left alone
    assert root.handlers == [text] and root.level == logging.INFO


def test_guarded_counts_and_times_through_cached_series() -> None:
    from streams.metrics import METRICS
    from streams.stage import guarded, outcome

    assert outcome("tag", "emitted") is METRICS.articles.labels("tag", "emitted")
    received = METRICS.articles.labels("tag", "received")
    timed = METRICS.processing_seconds.labels("tag")
    before = (received._value.get(), timed._sum.get())
    message = SimpleNamespace(topic="t", partition=0, offset=1, timestamp=5.0, key=b"k",
                              value=b"v")

    async def handle() -> None:
        async with guarded("tag", cast(Any, SimpleNamespace(message=message))):
            pass

    asyncio.run(handle())
    assert received._value.get() == before[0] + 1 and timed._sum.get() > before[1]


def test_alert_state_dump_is_the_same_bytes_as_asdict() -> None:
    from agents.alert.agent import _dump, _load
    from agents.alert.core import AlertState

    states = {f"w{i}": AlertState(alert_id="a1", watch_id=f"w{i}", story_id="s1", revision=i + 1,
                                  opened_at=1.5, updated_at=2.25, sources=["BBC", "Reuters"],
                                  article_ids=["x", "y"], terms=["taiwan strait"])
              for i in range(3)}
    expected = orjson.dumps({"p": 2, "t": 9.5, "states": {w: dataclasses.asdict(s)
                                                          for w, s in states.items()}})
    assert _dump(states, 2, 9.5) == expected
    assert _load(expected) == states
