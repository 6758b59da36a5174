"""How a term is found in an article: the folded stream the scan reads (fields, meta marks,
tokens, singulars), each term's keys in it, and a guess at how often each key occurs.

A term's key is its folded phrase with single spaces (" taiwan strait "); a wildcard's is a
token prefix (" commun"); with plurals it is every exact plural form (" strait ", " straits ").
A meta term's is its field's mark and its value's tokens as one pseudo-token. The guesses pick
each query's required keys (``plan.py``): English word frequencies from wordfreq, news-common
words such as "government" or "bbc" counted as common, a phrase rarer than its rarest word.
"""

from __future__ import annotations

from functools import lru_cache

from agents.wordlists import load_words
from streams.text import tokens

MIN_WILDCARD_PREFIX = 3
MAX_KEY_VARIANTS = 32  # plural combinations of one term put in the automaton as exact keys
UNKNOWN_FREQ = 5e-7  # a word not in the frequency list (names, jargon): below all in it
PHRASE_DECAY = 0.5  # each further word of a phrase halves the guess (names are collocations)
META_FREQ = {"lang": 1.0, "source": 0.3, "entity": 1e-5}  # lang:en holds for every article

TEXT_FIELDS = ("title", "text")  # positional fields; index 0 and 1 in the token streams
META_FIELDS = ("entity", "source", "lang")
FIELDS = TEXT_FIELDS + META_FIELDS
_META_MARK = {"entity": "\x01e", "source": "\x01s", "lang": "\x01l"}
_SEP = "\x00"  # a pseudo-token between fields: no key ever spans it
_JOIN = "\x02"  # joins the tokens of one meta value into a single pseudo-token

EXACT, PLURAL, PREFIX = 0, 1, 2  # how a part of a term matches a token

_NOT_PLURAL = load_words("agents.watch", "not_plural")

_STOPWORDS = load_words("agents.watch", "common_words")


@lru_cache(maxsize=65536)
def singular(token: str) -> str:
    """The simple English singular of a folded token (see ``query.py``'s docstring)."""
    if len(token) <= 3 or token[-1] != "s" or token in _NOT_PLURAL:
        return token
    if token.endswith(("ss", "us", "is")):
        return token
    if token.endswith("ies") and len(token) > 4:
        return token[:-3] + "y"
    if token.endswith(("sses", "ches", "shes", "xes", "zes")):
        return token[:-2]
    return token[:-1]


def _split_odd(found: list[str]) -> list[str] | None:
    """``found`` (folded tokens) cut at spaces without empty pieces, or None when it needs no
    cut: a few characters fold (NFKD) to nothing (U+FF9E), to a space (U+FC5E, U+037A) or to
    words and spaces (U+FDFA), and such a token would shift every token index after it in a
    joined stream (the kernel splits it at the spaces; the Python matcher counted them)."""
    joined = " ".join(found)
    if "" in found or joined.count(" ") != len(found) - 1:
        return [piece for piece in joined.split(" ") if piece]
    return None


def _tokens(text: str) -> list[str]:
    """``streams.text.tokens`` with every token non-empty and without a space."""
    found = tokens(text)
    if text.isascii():
        return found
    cut = _split_odd(found)
    return found if cut is None else cut


_TermProps = tuple[str, float, str, tuple[tuple[int, str, int], ...], tuple[str, ...], bool]


def _term_props(field: str | None, parts: tuple[tuple[str, int], ...]) -> _TermProps:
    """A term's (key, cost, sig, verify, keys, proven): the fields of ``Term`` after ``parts``."""
    sig = repr((field, parts))
    if field in META_FIELDS:
        joined = _JOIN.join(p for p, _ in parts)
        exact = parts[-1][1] != PREFIX
        key = " " + _META_MARK[field] + joined + (" " if exact else "")
        return key, META_FREQ[field], sig, (), (key,), True
    key, proven, freq = _search_key(parts)
    verify = tuple((k, t, kind) for k, (t, kind) in enumerate(parts) if k >= proven)
    variants = _variant_keys(parts)
    if variants is None:
        return key, freq, sig, verify, (key,), field is None and not verify
    return key, _variants_freq(parts), sig, verify, variants, field is None


def _search_key(parts: tuple[tuple[str, int], ...]) -> tuple[str, int, float]:
    """The string to search the stream for, how many parts it proves (the exact tokens up to
    the first wildcard, its prefix included, or plural, whose stem it holds unproven), and a
    guess at how often it occurs: a phrase is rarer than its rarest word."""
    key, freq = " ", 1.0
    for k, (token, kind) in enumerate(parts):
        if kind == EXACT:
            key += token + " "
            freq = min(freq, _token_freq(token))
            continue
        stem = token if kind == PREFIX else token[:-1] if token.endswith("y") else token
        freq = min(freq, _prefix_freq(stem)) * PHRASE_DECAY ** k
        return key + stem, k + 1 if kind == PREFIX else k, freq
    return key, len(parts), freq * PHRASE_DECAY ** (len(parts) - 1)


def _variants_freq(parts: tuple[tuple[str, int], ...]) -> float:
    """``_search_key``'s guess for the exact plural variants: each plural part counts twice."""
    freq = min(_token_freq(t) * (2 if kind == PLURAL else 1) if kind != PREFIX else _prefix_freq(t)
               for t, kind in parts)
    return freq * PHRASE_DECAY ** (len(parts) - 1)


def _plural_forms(token: str) -> list[str]:
    """Every token whose ``singular`` is ``token``: it, and -s, -es, -y to -ies forms."""
    forms = [token, token + "s", token + "es"]
    if token.endswith("y"):
        forms.append(token[:-1] + "ies")
    return [f for f in forms if singular(f) == token]


def _variant_keys(parts: tuple[tuple[str, int], ...]) -> tuple[str, ...] | None:
    """Exact prefilter keys for a term with plurals: every combination of the plural forms
    ("interest rate"~: " interest rate ", " interest rates ", " interests rate "...), so the
    automaton finds the term itself, not every token starting with "interest". None when
    the term has no plural part, or too many combinations, or a plural after a wildcard."""
    if not any(kind == PLURAL for _, kind in parts):
        return None
    keys = [" "]
    for n, (token, kind) in enumerate(parts):
        if kind == PREFIX:
            if n != len(parts) - 1:
                return None  # parts after a mid-phrase wildcard would still need checking
            return tuple(k + token for k in keys)
        forms = [token] if kind == EXACT else _plural_forms(token)
        if not forms or len(keys) * len(forms) > MAX_KEY_VARIANTS:
            return None
        keys = [k + form + " " for k in keys for form in forms]
    return tuple(keys)


@lru_cache(maxsize=1)
def _frequencies() -> dict[str, float]:
    """English word frequencies (wordfreq's small list: ~29,000 words, loaded in ~15 ms)."""
    from wordfreq import get_frequency_dict  # here: only key choice needs it, not every import

    return get_frequency_dict("en", wordlist="small")


@lru_cache(maxsize=1 << 17)
def _token_freq(token: str) -> float:
    """How often a folded token occurs in news text, roughly (a share of all tokens): the
    prefilter keys each AND by its rarest child, so a watch wakes up only when the word that
    makes it specific occurs. A word missing from the list is rarer than any in it."""
    if token in _STOPWORDS:
        return 1e-2  # common in news whatever English at large says ("bbc", "government")
    if token.isdigit():
        return 1e-4
    return _frequencies().get(token, UNKNOWN_FREQ)


def _prefix_freq(prefix: str) -> float:
    """A guess for a token prefix (a wildcard, or the stem of a plural): the word itself
    and some, and short prefixes of many words."""
    return max(3 * _token_freq(prefix), 1e-3 * 0.3 ** (len(prefix) - MIN_WILDCARD_PREFIX))
