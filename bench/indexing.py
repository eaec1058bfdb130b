"""Indexing cost: the straightforward one-photo-at-a-time loop against `indexer build`.

The straightforward loop is the one ModelScope's model card shows: open a photo, caption it
with the pipeline, embed it with CLIP, one photo at a time. Both run here on the same photos
with the same models, in the same process, so the ratio is fair.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from indexer.build import build_index
from indexer.decode_pool import DecodeJob, DecodePool
from indexer.models import ModelSet

from .measure import timed


def make_photos(folder: Path, count: int, size: tuple[int, int] = (4000, 3000)) -> list[Path]:
    """`count` distinct JPEG photos of `size` (12 MP by default, as a phone takes them)."""
    from testing.photos import scene

    folder.mkdir(parents=True, exist_ok=True)
    small = (size[0] // 8, size[1] // 8)
    paths = []
    for n in range(count):
        path = folder / f"IMG_{n:04d}.jpg"
        # drawn small and scaled up: generating 12 MP of shapes directly is slow
        scene(n, small).resize(size, Image.BILINEAR).save(path, quality=90)
        paths.append(path)
    return paths


def straightforward_loop(paths: list[Path], captioner, embedder) -> float:
    """Images per minute of decode -> caption -> embed, one photo at a time, full decode."""

    def run() -> None:
        for path in paths:
            with Image.open(path) as opened:
                picture = opened.convert("RGB")
            captioner.caption([picture])
            embedder.embed_images([picture])

    return 60 * len(paths) / timed(run)


def decode_stage(paths: list[Path], workers: int) -> float:
    """Images per second of the decode pool (draft-mode JPEG decode in worker processes)."""
    jobs = [DecodeJob(n, str(path)) for n, path in enumerate(paths)]
    with DecodePool(workers=workers) as pool:
        pool_list = list(pool.decode(jobs[:workers]))  # start-up, not counted
        assert len(pool_list) == min(workers, len(jobs))
        return len(jobs) / timed(lambda: list(pool.decode(jobs)))


def clip_stage(pictures: list[Image.Image], embedder, batch: int = 16) -> dict:
    """CLIP images/s through `embed_images` as the build calls it (on the square inputs the
    decode workers prepare) and model-only."""
    import torch

    from indexer.decode import clip_crop

    if embedder.crop_size:
        pictures = [clip_crop(picture, embedder.crop_size) for picture in pictures]

    def through_stage() -> None:
        for start in range(0, len(pictures), batch):
            embedder.embed_images(pictures[start : start + batch])

    through_stage()  # warm-up
    stage = len(pictures) / timed(through_stage)
    size = embedder.preprocess(pictures[0]).shape
    tensor = torch.randn(batch, *size).to(embedder.device, embedder.dtype)
    with torch.inference_mode():
        embedder.model.encode_image(tensor)
        repeats = max(1, len(pictures) // batch)
        model_only = (
            repeats
            * batch
            / timed(lambda: [embedder.model.encode_image(tensor) for _ in range(repeats)])
        )
    return {"stage_images_s": round(stage, 1), "model_only_images_s": round(model_only, 1),
            "stage_share": round(stage / model_only, 3)}  # fmt: skip


def caption_stage(pictures: list[Image.Image], captioner, batch: int) -> float:
    """Caption images/s through the captioner in batches."""
    captioner.caption(pictures[:1])  # warm-up
    return len(pictures) / timed(
        lambda: [captioner.caption(pictures[s : s + batch]) for s in range(0, len(pictures), batch)]
    )


def pipeline_build(folder: Path, models: ModelSet, batch_size: int, workers: int) -> float:
    """Images per minute of `indexer build` (models already loaded) into a fresh index."""
    index = Path(tempfile.mkdtemp(prefix="bench-index-"))
    try:
        count = len(list(folder.glob("*.jpg")))
        seconds = timed(lambda: build_index([folder], index, models, batch_size=batch_size,
                                            decode_pool=DecodePool(workers=workers)))  # fmt: skip
        return 60 * count / seconds
    finally:
        shutil.rmtree(index, ignore_errors=True)


def vector_agreement(pictures: list[Image.Image], reference, other) -> float:
    """Smallest cosine similarity between two embedders' vectors of the same pictures."""
    a, b = reference.embed_images(pictures), other.embed_images(pictures)
    return float(np.min(np.sum(a * b, axis=1)))


def caption_agreement(pictures: list[Image.Image], reference, other) -> dict:
    """How often two captioners agree: exact captions, and tokens in the same place."""
    a, b = reference.caption(pictures), other.caption(pictures)
    same = sum(x == y for x, y in zip(a, b, strict=True))
    tokens = [np.mean([p == q for p, q in zip(x.split(), y.split(), strict=False)] or [0.0])
              for x, y in zip(a, b, strict=True)]  # fmt: skip
    return {"identical": f"{same}/{len(a)}", "token_agreement": round(float(np.mean(tokens)), 3)}
