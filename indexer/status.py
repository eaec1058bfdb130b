"""What is in an index: counts, models, failures."""

from __future__ import annotations

import os
from pathlib import Path

from .store import DB_NAME, IndexStore
from .vector_index import FAISS_NAME, load_vector_index


def index_status(index_dir: str | os.PathLike) -> dict:
    """A JSON-ready summary of the index in `index_dir`.

    Keys: `index` (the folder), `indexed`, `failed`, `vectors`, `models`, `failures` (path and
    reason of each), `passes` (each build pass's progress: {"clip": {"done"}, "text": {"done",
    "with_text", "pending"}, "captions": {"done", "pending"}}), and `notice` when the FAISS
    file had to be rebuilt in memory.
    A folder with no index yet gives zero counts and `exists` false.
    """
    if not (Path(index_dir) / DB_NAME).exists():
        return {
            "index": str(index_dir), "exists": False, "indexed": 0, "failed": 0, "vectors": 0,
            "models": {"caption_model": None, "clip_model": None, "vector_dim": None},
            "failures": [], "notice": None, "passes": _passes(0, 0, {"read": 0, "with_text": 0}),
        }  # fmt: skip
    store = IndexStore.open(index_dir)
    try:
        store.check_integrity()
        vectors = load_vector_index(store)
        indexed = store.count_images()
        return {
            "index": str(store.index_dir),
            "exists": True,
            "indexed": indexed,
            "passes": _passes(indexed, store.count_pending_captions(), store.text_counts()),
            "failed": store.count_failures(),
            "vectors": vectors.count if vectors else 0,
            "models": store.models(),
            "faiss_file": str(store.index_dir / FAISS_NAME),
            "notice": vectors.notice if vectors else None,
            "failures": [
                {"path": row["path"], "reason": row["reason"]} for row in store.failures()
            ],
        }
    finally:
        store.close()


def _passes(indexed: int, pending: int, text: dict[str, int]) -> dict:
    """How far each pass of the builds has come: CLIP (searchable), text, captions."""
    return {
        "clip": {"done": indexed},
        "text": {"done": text["read"], "with_text": text["with_text"],
                 "pending": indexed - text["read"]},
        "captions": {"done": indexed - pending, "pending": pending},
    }  # fmt: skip
