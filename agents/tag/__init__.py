"""The tag stage's pure core: entities, keywords and categories of an article.

``Tagger`` is built once per worker (automata, word lists, word frequencies) and then tags
articles in a few hundred µs each; it never touches the watch or story fields, which other
stages own. Each field is tokenised once: the keywords and the categories share the tokens
and their counts.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from operator import attrgetter

from agents.tag.categories import Categorizer
from agents.tag.entities import EntityTagger
from agents.tag.keywords import keywords_of
from streams.records import Article
from streams.text import tokens
from streams.words import warm

__all__ = ["Tagger"]

# All of Article's fields, in __init__ order: a copy is Article(*_FIELDS(article)), ~8x cheaper
# than dataclasses.replace (the same shallow copy).
_FIELDS = attrgetter(*(f.name for f in dataclasses.fields(Article)))
_POSITIONAL = all(f.init for f in dataclasses.fields(Article))


class Tagger:
    """Sets ``entities``, ``keywords`` and ``categories`` of an article."""

    def __init__(self) -> None:
        warm()
        self.entities = EntityTagger()
        self.categorizer = Categorizer()

    def tag(self, article: Article) -> Article:
        """A copy of ``article`` with the tag fields filled in (the input is left as it is)."""
        title, text = article.title or "", article.text or ""
        title_tokens = tokens(title)
        words = [*title_tokens, *title_tokens, *tokens(text)]
        counts = Counter(words)
        out = Article(*_FIELDS(article)) if _POSITIONAL else dataclasses.replace(article)
        out.entities = self.entities.entities(title, text)
        out.keywords = keywords_of(words, counts)
        out.categories = self.categorizer.categorize_counts(counts)
        return out
