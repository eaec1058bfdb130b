"""Candidates for a query: nearest CLIP vectors, and captions that contain its words."""

from __future__ import annotations

import re

import numpy as np

from indexer.store import IndexStore
from indexer.vector_index import VectorIndex

from .filters import Filters

# Words too common to say anything about a picture; left out of the caption search.
STOPWORDS = frozenset(
    {"a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "in", "is",
     "it", "its", "of", "on", "or", "that", "the", "there", "this", "to", "was", "were", "with",
     "photo", "photograph", "picture", "image", "some"}
)  # fmt: skip


def vector_candidates(
    vectors: VectorIndex | None,
    query_vector: np.ndarray,
    limit: int,
    allowed: np.ndarray | None = None,
) -> list[tuple[int, float]]:
    """[(image id, cosine similarity)] of the `limit` nearest vectors (among `allowed` ids
    when given), best first."""
    if vectors is None or vectors.count == 0 or limit <= 0:
        return []
    if allowed is not None and len(allowed) == 0:
        return []
    scores, ids = vectors.search(query_vector.reshape(1, -1), limit, allowed)
    return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]


def caption_query(text: str) -> str | None:
    """An FTS5 query matching captions with any of the text's meaningful words, or None."""
    words = [w for w in re.findall(r"\w+", text.lower()) if w not in STOPWORDS]
    if not words:
        return None
    return " OR ".join(f'"{word}"' for word in dict.fromkeys(words))


def caption_candidates(
    store: IndexStore, text: str, limit: int, filters: Filters | None = None
) -> list[tuple[int, float]]:
    """[(image id, BM25 score)] of captions matching the text's words (and the filters),
    best first."""
    match = caption_query(text)
    if match is None or limit <= 0:
        return []
    return store.caption_matches(match, limit, filters)
