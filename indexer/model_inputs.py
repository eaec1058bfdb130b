"""The reranker's picture, prepared at build time: one small PNG per indexed content.

OFA's visual-entailment preprocessor squeezes every picture to a square of its model's
`patch_image_size` (480 for the distilled and large models; bicubic) before the model sees
it. Doing that at query time means decoding each candidate's original (a 12-megapixel JPEG
is ~30 ms even in draft mode, a HEIC far more) while the user waits. The build has the
decoded picture in hand anyway, so its decode workers also make that square (at the
configured reranker's size: `reranker_input_size`) and the build keeps it under
`<index>/model-inputs/`, named by the content hash: copies share one file, a moved photo
keeps it, and it goes when no indexed photo has that content any more.
At query time the square decodes in a few ms and the preprocessor's resize is a copy, so the
model sees exactly the pixels it saw when it read the original.

The square is lossless: JPEG, even at quality 95 without chroma subsampling, moved the
trained shapes judge's P(yes) by up to 0.05 (0.84 at its 64 px); PNG moves it by 0.
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


def square_input(image: Image.Image, size: int = INPUT_SIZE) -> bytes:
    """The picture as OFA's preprocessor resizes it (size x size, bicubic), as PNG bytes."""
    square = image.convert("RGB").resize((size, size), Image.BICUBIC)
    out = io.BytesIO()
    square.save(out, format="PNG", compress_level=3)
    return out.getvalue()


def reranker_input_size(spec: str) -> int:
    """The square side the OFA model `spec` (a folder, or a hub id already in the ModelScope
    cache) squeezes pictures to, read from its configuration.json; INPUT_SIZE when that
    cannot be read without a download."""
    import json

    from .hub import looks_like_path

    if looks_like_path(spec):
        candidates = [Path(os.path.expanduser(spec))]
    else:
        cache = Path(os.environ.get("MODELSCOPE_CACHE", os.path.expanduser("~/.cache/modelscope")))
        candidates = [cache / "hub" / spec, cache / spec, cache / "hub" / "models" / spec]
    for folder in candidates:
        try:
            config = json.loads((folder / "configuration.json").read_text())
            return int(config["model"]["patch_image_size"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return INPUT_SIZE


def input_path(index_dir: str | os.PathLike, content_hash: str) -> Path:
    """Where the prepared input of content `content_hash` is kept."""
    if not content_hash.isalnum():
        raise ValueError(f"not a content hash: {content_hash!r}")
    return Path(index_dir) / MODEL_INPUTS_DIR / content_hash[:2] / f"{content_hash}.png"


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


def load_input(
    index_dir: str | os.PathLike, content_hash: str, size: int | None = None
) -> Image.Image | None:
    """The prepared input of a content, or None when there is none (an index built before
    they existed), it cannot be read, or it is not `size` pixels square (made for another
    reranker); the caller then decodes the original."""
    from .decode import DecodeError, decode_image

    path = input_path(index_dir, content_hash)
    try:
        picture = decode_image(path.read_bytes(), min_side=1 << 16).image  # never reduced
    except (OSError, DecodeError):
        return None
    return picture if size is None or picture.size == (size, size) else None


def remove_inputs(index_dir: str | os.PathLike, hashes: Iterable[str]) -> int:
    """Remove the prepared inputs of contents no longer indexed; return how many went."""
    removed = 0
    for content_hash in hashes:
        path = input_path(index_dir, content_hash)
        if path.is_file():
            path.unlink(missing_ok=True)
            removed += 1
    return removed
