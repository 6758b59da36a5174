"""The tag stage's pure core: entities, keywords and categories of an article.

``Tagger`` is built once per worker (automata, word lists) and then tags articles in well
under a millisecond each; it never touches the watch or story fields, which other stages own.
"""

from __future__ import annotations

import dataclasses

from agents.tag.categories import Categorizer
from agents.tag.entities import EntityTagger
from agents.tag.keywords import keywords
from streams.records import Article

__all__ = ["Tagger"]


class Tagger:
    """Sets ``entities``, ``keywords`` and ``categories`` of an article."""

    def __init__(self) -> None:
        self.entities = EntityTagger()
        self.categorizer = Categorizer()

    def tag(self, article: Article) -> Article:
        """A copy of ``article`` with the tag fields filled in."""
        title, text = article.title or "", article.text or ""
        return dataclasses.replace(
            article,
            entities=self.entities.entities(title, text),
            keywords=keywords(title, text),
            categories=self.categorizer.categorize(title, text),
        )
