"""What is in an index: counts, models, failures."""

from __future__ import annotations

import os
from pathlib import Path

from .store import DB_NAME, IndexStore
from .vector_index import FAISS_NAME, load_vector_index


def index_status(index_dir: str | os.PathLike) -> dict:
    """A JSON-ready summary of the index in `index_dir`.

    Keys: `index` (the folder), `indexed`, `failed`, `vectors`, `models`, `failures` (path and
    reason of each), and `notice` when the FAISS file had to be rebuilt in memory.
    A folder with no index yet gives zero counts and `exists` false.
    """
    if not (Path(index_dir) / DB_NAME).exists():
        return {
            "index": str(index_dir), "exists": False, "indexed": 0, "failed": 0, "vectors": 0,
            "models": {"caption_model": None, "clip_model": None, "vector_dim": None},
            "failures": [], "notice": None,
        }  # fmt: skip
    store = IndexStore.open(index_dir)
    try:
        store.check_integrity()
        vectors = load_vector_index(store)
        return {
            "index": str(store.index_dir),
            "exists": True,
            "indexed": store.count_images(),
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
