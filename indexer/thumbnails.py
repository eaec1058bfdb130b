"""Thumbnails of indexed photos, made once and kept on disk under the index folder.

A page that shows search results needs small pictures, not the 12-megapixel originals. A
thumbnail is looked up by image id only: the path it is made from comes from the index row,
never from the caller, so nothing outside the index can be read through it. Its file name
carries the id, the content hash the index holds for that image and the size, so a changed
photo gets a new thumbnail (and the old one is removed), while a moved one keeps its own.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from PIL import Image

from .decode import DecodeError, decode_image
from .errors import IndexerError
from .store import IndexStore, fs_path_of

THUMBNAILS_DIR = "thumbnails"
GRID_SIZE = 320  # pixels on the long side: a results grid
DETAIL_SIZE = 1280  # a detail view
MIN_SIZE, MAX_SIZE = 16, 4096
JPEG_QUALITY = 85
_HEX = re.compile(r"[0-9a-f]+")


class ThumbnailError(IndexerError):
    """The photo behind an id cannot be shown (gone, unreadable, or no such id)."""


def thumbnail(store: IndexStore, image_id: int, size: int = GRID_SIZE) -> Path:
    """The path of a JPEG thumbnail of image `image_id`, at most `size` pixels on its long
    side, made on first use and cached under `<index>/thumbnails/`.

    Raises ThumbnailError with a one-line reason when there is no such image or its file
    cannot be decoded (moved away since the last build, damaged...).
    """
    size = int(size)
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"thumbnail size must be between {MIN_SIZE} and {MAX_SIZE} pixels")
    row = store.image(int(image_id))
    if row is None:
        raise ThumbnailError(f"no photo with id {image_id} in the index")
    if not _HEX.fullmatch(row["hash"] or ""):
        raise ThumbnailError(f"photo {image_id} has no content hash; run `indexer build` again")
    folder = Path(store.index_dir) / THUMBNAILS_DIR
    target = folder / f"{row['id']}-{row['hash']}-{size}.jpg"
    if target.is_file():
        return target
    picture = _make(fs_path_of(row), size)
    folder.mkdir(parents=True, exist_ok=True)
    _write_atomically(picture, target)
    for old in folder.glob(f"{row['id']}-*-{size}.jpg"):  # made from earlier content
        if old != target:
            old.unlink(missing_ok=True)
    return target


def _make(path: str, size: int) -> Image.Image:
    try:
        picture = decode_image(path, min_side=size).image
    except DecodeError as error:
        raise ThumbnailError(f"{path}: {error}") from None
    except OSError as error:  # gone or unreadable since the last build
        raise ThumbnailError(f"{path}: {error.strerror or error}") from None
    picture.thumbnail((size, size), Image.Resampling.LANCZOS)
    return picture


def _write_atomically(picture: Image.Image, target: Path) -> None:
    """Write through a temporary file in the same folder, so that a reader (another
    session of the page) never sees half a file and two writers do not collide."""
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".jpg")
    try:
        with os.fdopen(handle, "wb") as stream:
            picture.save(stream, format="JPEG", quality=JPEG_QUALITY)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
