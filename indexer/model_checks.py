"""Checks a build makes before it writes: the models it was given fit the index."""

from __future__ import annotations

from .embed import Embedder
from .errors import IndexMismatch
from .models import ModelSet
from .store import IndexStore
from .vector_index import FAISS_NAME


def check_models(store: IndexStore, models: ModelSet, rebuild: bool) -> None:
    """Raise IndexMismatch when the index was built with another CLIP model, unless
    `rebuild`: then load the new models (a model that cannot load fails here, before the old
    index is dropped) and empty the index."""
    recorded = store.models()
    if recorded["clip_model"] is None or recorded["clip_model"] == models.clip_name:
        return
    if not rebuild:
        raise IndexMismatch(
            f"index {store.index_dir} was built with CLIP model "
            f"{recorded['clip_model']!r}, not {models.clip_name!r}; use that model, "
            "or pass --rebuild to re-index every photo with the new one"
        )
    models.embedder()
    models.captioner()
    store.drop_all_images()
    (store.index_dir / FAISS_NAME).unlink(missing_ok=True)


def checked_embedder(store: IndexStore, models: ModelSet) -> Embedder:
    """The CLIP model, loaded; IndexMismatch when its vectors do not fit the index's."""
    embedder = models.embedder()
    recorded = store.models()["vector_dim"]
    if recorded and recorded != embedder.dim:
        raise IndexMismatch(
            f"index {store.index_dir} holds vectors of size {recorded} but "
            f"{models.clip_name!r} makes size {embedder.dim}; pass --rebuild"
        )
    return embedder
