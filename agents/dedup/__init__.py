"""The dedup stage: exact and near-duplicate detection and story clustering.

``index.DedupIndex`` is the pure core the Faust agent calls; ``minhash`` holds the
near-duplicate signatures and LSH, ``stories`` the story clusterer, ``terms`` the term
vectors, ``evaluate`` the offline evaluation against labelled data sets.
"""

from agents.dedup.index import DedupIndex, Verdict

__all__ = ["DedupIndex", "Verdict"]
