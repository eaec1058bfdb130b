"""The picture the reranker judges for a hit: the square the build prepared beside the
index (indexer.model_inputs), else one made from the original now."""

from __future__ import annotations

from contextlib import suppress

from PIL import Image

from indexer.decode import DecodeError, decode_image
from indexer.model_inputs import load_input, save_input, square_input
from indexer.store import IndexStore

from .results import Hit


def reranker_picture(store: IndexStore, hit: Hit, size: int | None) -> Image.Image | None:
    """The reranker's picture of a hit at its input `size`: the square the build prepared,
    else one made now from the original (and kept for next time), or None when that cannot
    be read."""
    row = store.image(hit.id)
    content = row["hash"] if row else ""
    if content.isalnum() and size:
        prepared = load_input(store.index_dir, content, size)
        if prepared is not None:
            return prepared
    try:
        picture = decode_image(hit.path).image
    except (DecodeError, OSError):
        return None
    if content.isalnum() and size:
        with suppress(OSError):  # a read-only index still answers, just more slowly
            save_input(store.index_dir, content, square_input(picture, size))
    return picture
