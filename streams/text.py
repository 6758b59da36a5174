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
# The common case: no letter or digit outside ASCII (curly quotes and dashes are fine), so the
# tokens are the [a-z0-9] runs of the lower-cased text.
_ASCII_WORD = re.compile(r"[a-z0-9]+")
# Those runs without a regex, ~2x faster: one byte table lower-cases A-Z, keeps a-z and 0-9 and
# turns every other byte into a space (every byte of a UTF-8 encoded non-ASCII character is
# >= 0x80), then str.split() cuts at the spaces.
_FOLD_ASCII = bytes(
    b + 32 if 65 <= b <= 90 else b if 97 <= b <= 122 or 48 <= b <= 57 else 32 for b in range(256)
)
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_WORD_CHAR = re.compile(r"[^\W_]")


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
    if text.isascii() or not _WORD_CHAR.search("".join(_NON_ASCII.findall(text))):
        return text.encode("utf-8", "surrogatepass").translate(_FOLD_ASCII).decode("ascii").split()
    return [_fold_word(w) for w in _WORD.findall(text)]


def token_spans(text: str) -> list[Token]:
    """Folded tokens with their offsets in ``text``."""
    if text.isascii():  # lower() keeps every offset of an ASCII text
        return [Token(m.group(), m.start(), m.end())
                for m in _ASCII_WORD.finditer(text.lower())]
    return [Token(_fold_word(m.group()), m.start(), m.end()) for m in _WORD.finditer(text)]


def normalize(text: str) -> str:
    """The folded tokens joined by single spaces: the canonical form for hashing and matching."""
    return " ".join(tokens(text))
