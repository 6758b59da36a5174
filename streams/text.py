"""Text normalisation shared by tagging, watch matching and dedup.

One rule everywhere: a *token* is a run of letters or digits; case, diacritics, hyphens,
punctuation and quotes are folded away. So "Crisis-Communications", "crisis communications"
and "CRISIS  communications" all give ``["crisis", "communications"]``, and
"Taiwan Strait's" gives ``["taiwan", "strait", "s"]`` whose first two tokens match
"Taiwan Strait". Offsets are kept so a match can be shown in the original text.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import NamedTuple

__all__ = ["Token", "fold", "normalize", "token_spans", "tokens"]

# \w without the underscore: letters and digits in any script.
_WORD = re.compile(r"[^\W_]+")


class Token(NamedTuple):
    text: str  # folded form
    start: int  # offset of the original token in the source text
    end: int


@lru_cache(maxsize=65536)
def _fold_word(word: str) -> str:
    folded = word.casefold()
    if folded.isascii():
        return folded
    decomposed = unicodedata.normalize("NFKD", folded)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def fold(word: str) -> str:
    """Fold one word: lower case, no diacritics ("Zürich" -> "zurich")."""
    return _fold_word(word) if not word.isascii() else word.lower()


def tokens(text: str) -> list[str]:
    """Folded tokens of ``text``."""
    if text.isascii():
        return _WORD.findall(text.lower())
    return [_fold_word(w) for w in _WORD.findall(text)]


def token_spans(text: str) -> list[Token]:
    """Folded tokens with their offsets in ``text``."""
    ascii_text = text.isascii()
    out: list[Token] = []
    for m in _WORD.finditer(text):
        word = m.group()
        out.append(Token(word.lower() if ascii_text else _fold_word(word), m.start(), m.end()))
    return out


def normalize(text: str) -> str:
    """The folded tokens joined by single spaces: the canonical form for hashing and matching."""
    return " ".join(tokens(text))
