"""Categories from a hand-authored keyword lexicon (``data/categories.txt``).

Each folded token of the article votes for the categories whose word list holds it; title
tokens vote twice. A category is reported when it has enough votes and at least a third of
the best one's, at most three, best first. Cheap (one dict lookup per distinct token, from a
``Counter`` of the tokens shared with the keywords, in order of first appearance so that ties
rank as if counted token by token), explainable, and with no weights learnt from any data set.
"""

from __future__ import annotations

from collections import Counter

from agents.wordlists import load_lines
from streams.text import tokens

__all__ = ["Categorizer", "CATEGORIES"]

# The category labels, in the lexicon's order.
CATEGORIES = tuple(line.partition(":")[0].strip() for line in load_lines("agents.tag", "categories"))
_MIN_VOTES = 3
_RELATIVE = 0.34
_MAX_CATEGORIES = 3


def load_lexicon() -> dict[str, tuple[str, ...]]:
    """word -> the categories it votes for."""
    votes: dict[str, list[str]] = {}
    for line in load_lines("agents.tag", "categories"):
        category, _, words = line.partition(":")
        for word in set(words.split()):
            votes.setdefault(word, []).append(category.strip())
    return {word: tuple(cats) for word, cats in votes.items()}


class Categorizer:
    """Scores an article against each category's word list."""

    def __init__(self, lexicon: dict[str, tuple[str, ...]] | None = None) -> None:
        self.lexicon = lexicon if lexicon is not None else load_lexicon()

    def scores(self, title: str, text: str) -> Counter[str]:
        title_tokens = tokens(title)
        return self.scores_of(Counter([*title_tokens, *title_tokens, *tokens(text)]))

    def scores_of(self, counts: dict[str, int]) -> Counter[str]:
        """Votes from token counts of ``title + title + text`` (title tokens vote twice)."""
        lexicon = self.lexicon
        score: Counter[str] = Counter()
        for word in filter(lexicon.__contains__, counts):  # in first-appearance order
            n = counts[word]
            for cat in lexicon[word]:
                score[cat] += n
        return score

    def categorize(self, title: str, text: str) -> list[str]:
        """0-3 category labels, best first."""
        title_tokens = tokens(title)
        return self.categorize_counts(Counter([*title_tokens, *title_tokens, *tokens(text)]))

    def categorize_counts(self, counts: dict[str, int]) -> list[str]:
        """``categorize`` from ``Counter(title + title + text tokens)``."""
        ranked = self.scores_of(counts).most_common()
        if not ranked or ranked[0][1] < _MIN_VOTES:
            return []
        floor = ranked[0][1] * _RELATIVE
        return [cat for cat, n in ranked[:_MAX_CATEGORIES] if n >= max(floor, _MIN_VOTES)]
