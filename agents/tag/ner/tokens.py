"""The entity tagger's tokenizer: CoNLL-2003-like tokens with character offsets.

The model was trained on CoNLL tokens, so raw text is cut the same way: punctuation apart,
a possessive "'s" apart ("Taiwan Strait's" -> "Taiwan", "Strait", "'s"), but "U.S.",
"Mr.", "O'Neill", "Jean-Luc", "1996-08-22", "1,000.5" and "S&P" whole. A URL or an e-mail
address is one token, which the tagger never puts in a name.

``TOKEN`` is the definition; the tagger runs the compiled equivalent (``kernel.scan``, which
looks each token up as it goes), and tests/unit/test_ner.py checks that both agree.
"""

from __future__ import annotations

import re

from agents.tag.ner import kernel
from agents.wordlists import load_words

__all__ = ["ABBREVIATIONS", "TOKEN", "is_url", "tokenize"]

# Abbreviations whose "." is part of the word: "Mr." must not end a sentence.
ABBREVIATIONS = load_words("agents.tag", "abbreviations")

# First match wins at each position, so the order matters.
TOKEN = re.compile(
    r"(?:https?://|www\.)[^\s<>\"“”()\[\]]+[^\s<>\"“”()\[\].,;:!?'’]"  # URL (no trailing punctuation)
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"  # e-mail address
    r"|(?:[^\W\d_]\.){2,}(?![^\W_])"  # initialism: U.S., U.N.
    r"|(?:" + "|".join(sorted(ABBREVIATIONS, key=len, reverse=True)) + r")\.(?=\s)"  # Mr. Inc.
    r"|[A-Z]\.(?=\s+[A-Z])"  # an initial: "George W. Bush"
    r"|\d+(?:[.,]\d+)+(?![^\W_])|\d+(?:-\d+)?/\d+(?![^\W_])"  # 1,000.5 and 5-1/2
    r"|[A-Z]+&[A-Z]+(?![^\W_])"  # S&P, AT&T
    r"|[^\W_]+(?:-[^\W_]+)*(?:['’](?![sS](?![^\W_]))[^\W_]+(?:-[^\W_]+)*)*"  # word: O'Neill, Jean-Luc
    r"|['’][sS](?![^\W_])"  # possessive 's
    r"|-{2,}|\.{2,}"  # dashes, an ellipsis
    r"|\S"  # anything else, one character
)
_URL = re.compile(r"(?:https?://|www\.)|[\w.+-]+@[\w-]+\.")


def is_url(token: str) -> bool:
    """A URL or an e-mail address (which the tokenizer keeps whole)."""
    return _URL.match(token) is not None


def tokenize(text: str) -> list[str]:
    """The tokens of ``text`` (the tagger itself goes through ``Lexicon.scan``)."""
    return kernel.tokenize(text, ABBREVIATIONS)[0]  # type: ignore[no-any-return]
