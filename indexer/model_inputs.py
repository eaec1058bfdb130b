"""The reranker's picture, prepared at build time: one small JPEG per indexed content.

OFA's visual-entailment preprocessor squeezes every picture to a 480 x 480 square (bicubic)
before the model sees it. Doing that at query time means decoding each candidate's original
(a 12-megapixel JPEG is ~30 ms even in draft mode, a HEIC far more) while the user waits. The
build has the decoded picture in hand anyway, so its decode workers also make that square
and the build keeps it under `<index>/model-inputs/`, named by the content hash: copies share
one file, a moved photo keeps it, and it goes when no indexed photo has that content any more.
At query time the square decodes in ~2 ms and the preprocessor's resize is a copy.

The square is a JPEG (quality 90, ~40 KB) rather than lossless (~300 KB): on the trained
shapes world its verdicts and P(yes) match the original's (README, tests/test_world.py).
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from PIL import Image

MODEL_INPUTS_DIR = "model-inputs"
INPUT_SIZE = 480  # OFA's patch_image_size for the distilled and large models
JPEG_QUALITY = 90


def square_input(image: Image.Image, size: int = INPUT_SIZE) -> bytes:
    """The picture as OFA's preprocessor resizes it (size x size, bicubic), as JPEG bytes."""
    square = image.convert("RGB").resize((size, size), Image.BICUBIC)
    out = io.BytesIO()
    square.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def input_path(index_dir: str | os.PathLike, content_hash: str) -> Path:
    """Where the prepared input of content `content_hash` is kept."""
    if not content_hash.isalnum():
        raise ValueError(f"not a content hash: {content_hash!r}")
    return Path(index_dir) / MODEL_INPUTS_DIR / content_hash[:2] / f"{content_hash}.jpg"


def save_input(index_dir: str | os.PathLike, content_hash: str, data: bytes) -> None:
    """Keep a prepared input (written atomically: a crash leaves no half file)."""
    target = input_path(index_dir, content_hash)
    if target.is_file():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_input(index_dir: str | os.PathLike, content_hash: str) -> Image.Image | None:
    """The prepared input of a content, or None when there is none (an index built before
    they existed) or it cannot be read; the caller then decodes the original."""
    from .decode import DecodeError, decode_image

    path = input_path(index_dir, content_hash)
    try:
        return decode_image(path.read_bytes(), min_side=INPUT_SIZE).image
    except (OSError, DecodeError):
        return None


def remove_inputs(index_dir: str | os.PathLike, hashes: Iterable[str]) -> int:
    """Remove the prepared inputs of contents no longer indexed; return how many went."""
    removed = 0
    for content_hash in hashes:
        path = input_path(index_dir, content_hash)
        if path.is_file():
            path.unlink(missing_ok=True)
            removed += 1
    return removed
