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


def indexed_picture(store: IndexStore, image_id: int) -> Image.Image:
    """The decoded picture of indexed photo `image_id`; IndexerError, in one line, when
    there is no such photo or its file cannot be read now."""
    from indexer.errors import IndexerError
    from indexer.store.rows import fs_path_of

    row = store.image(int(image_id))
    if row is None:
        raise IndexerError(f"no photo with id {image_id} in the index")
    try:
        return decode_image(fs_path_of(row)).image
    except (DecodeError, OSError) as error:
        raise IndexerError(f"photo {image_id} cannot be read now: {error}") from None
