r"""English word frequencies, fast: shared by the tag stage (entities, keywords) and dedup (IDF).

``zipf(word)`` is wordfreq's Zipf frequency. ``wordfreq.zipf_frequency`` costs ~25 µs for a
word it has not seen, almost all of it in its Unicode tokenizer. A plain lower-case ASCII
word is its own single token, so its frequency is one lookup in wordfreq's frequency dict
followed by wordfreq's own arithmetic (3 significant digits, then Zipf rounded to 0.01),
repeated here step for step so the result is the same number. Any other word goes through
``zipf_frequency``. Results are memoised.
"""

from __future__ import annotations

import math

from wordfreq import get_frequency_dict, zipf_frequency, zipf_to_freq

__all__ = ["warm", "zipf"]

_LANG = "en"
_MEMO_MAX = 1 << 19
_memo: dict[str, float] = {}
_freqs: dict[str, float] = {}
_MINIMUM = zipf_to_freq(0.0)  # what zipf_frequency passes as the floor: Zipf 0


def warm() -> None:
    """Load the frequency list and wordfreq's tokenizer now, not on the first article."""
    if not _freqs:
        _freqs.update(get_frequency_dict(_LANG))
        zipf_frequency("warm", _LANG)


def _compute(word: str) -> float:
    if word.isascii() and word.isalpha() and word.islower():
        if not _freqs:
            warm()
        f = _freqs.get(word)
        if f is None:
            freq = _MINIMUM  # wordfreq returns the floor for a missing word, unrounded
        else:
            freq = max(1.0 / (1.0 / f), _MINIMUM)
            freq = round(freq, math.floor(-math.log(freq, 10)) + 3)
        return round(math.log(freq, 10) + 9, 2)
    return zipf_frequency(word, _LANG)


def zipf(word: str) -> float:
    """``wordfreq.zipf_frequency(word, "en")``, memoised."""
    z = _memo.get(word)
    if z is None:
        if len(_memo) >= _MEMO_MAX:
            _memo.clear()
        z = _memo[word] = _compute(word)
    return z
