"""Candidates for a query: nearest CLIP vectors, and captions that contain its words."""

from __future__ import annotations

import re

import numpy as np

from indexer.store import IndexStore
from indexer.vector_index import VectorIndex

from .filters import Filters

# A word in this many captions or more is too common to rank by BM25 (see caption_candidates).
COMMON_WORD = 1_000
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


def caption_words(text: str) -> list[str]:
    """The text's meaningful words, lower-case, each once, in order."""
    return list(dict.fromkeys(w for w in re.findall(r"\w+", text.lower()) if w not in STOPWORDS))


def caption_query(text: str, operator: str = "OR") -> str | None:
    """An FTS5 query matching captions with any (or, with "AND", all) of the text's
    meaningful words, or None."""
    words = caption_words(text)
    return f" {operator} ".join(f'"{word}"' for word in words) if words else None


def caption_candidates(
    store: IndexStore, text: str, limit: int, filters: Filters | None = None
) -> list[tuple[int, float]]:
    """[(image id, score)] of captions matching the text's words (and the filters), best
    first.

    While each word is in fewer than COMMON_WORD captions: those with any of the words, by
    BM25. Once one is commoner (a large library, or everyday words), BM25 would read every
    caption of it: then captions with all the words that occur at all come first, newest
    first (score 0), and, if there are fewer than `limit`, captions with any of the rarer
    words follow by BM25.
    """
    words = caption_words(text)
    if not words or limit <= 0:
        return []
    counts = store.caption_word_counts(words, COMMON_WORD)
    rare = [word for word in words if 0 < counts[word] < COMMON_WORD]
    if all(counts[word] < COMMON_WORD for word in words):
        return store.caption_matches(caption_query(text), limit, filters)
    present = " ".join(word for word in words if counts[word])
    hits = store.caption_matches(caption_query(present, "AND"), limit, filters, newest_first=True)
    if rare and len(hits) < limit:
        seen = {image_id for image_id, _ in hits}
        more = store.caption_matches(caption_query(" ".join(rare)), limit, filters)
        hits += [hit for hit in more if hit[0] not in seen][: limit - len(hits)]
    return hits
