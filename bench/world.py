"""Caption speed per profile on the trained tiny captioner of the shapes world: learned
weights end their captions at EOS and peak sharply, unlike random ones, so this is where
the exact profile's near-tie guard shows how often it has to redo a step."""

from __future__ import annotations

import tempfile
from pathlib import Path

from .indexing import caption_agreement, caption_stage


def world_captions(options, cache: Path) -> dict:
    """Images/s of each caption profile on the world's library pictures, their agreement
    with the unmodified pipeline, and the exact profile's guard counts."""
    from indexer.caption import OfaCaptioner
    from indexer.decode import decode_image
    from testing.world import trained_models, write_library

    models = trained_models(cache)  # trained on the first run (a few minutes), then reused
    with tempfile.TemporaryDirectory(prefix="bench-world-") as folder:
        paths = sorted(write_library(Path(folder)))
        pictures = [decode_image(str(path)).image for path in paths]
    device, batch = options.device, options.batch_size
    profiles = {name: OfaCaptioner(models.captioner, device, batch, profile=name)
                for name in ("plain", "exact", "fast")}  # fmt: skip
    out: dict = {"pictures": len(pictures), "captioner": models.captioner,
                 "held_out_exact_match": models.caption_report["after"]["exact_match"]}  # fmt: skip
    for name, captioner in profiles.items():
        out[f"{name}_images_s"] = round(
            caption_stage(pictures, captioner, 1 if name == "plain" else batch), 1
        )
    exact = profiles["exact"]
    before = exact.guard_counts()
    out["exact_vs_plain"] = caption_agreement(pictures, profiles["plain"], exact)
    seen, redone = (now - then for now, then in zip(exact.guard_counts(), before, strict=True))
    out["guard"] = {"captions": seen, "redone": redone}
    out["fast_vs_plain"] = caption_agreement(pictures, profiles["plain"], profiles["fast"])
    return out


def world_table(w: dict) -> list[tuple]:
    guard = w["guard"]
    return [
        ("caption, unmodified", f"{w['plain_images_s']} images/s", "batch 1"),
        ("caption, default (exact)", f"{w['exact_images_s']} images/s",
         f"identical: {w['exact_vs_plain']['identical']}; near-tie guard redid "
         f"{guard['redone']} of {guard['captions']} captions"),
        ("caption, --fast", f"{w['fast_images_s']} images/s",
         f"identical: {w['fast_vs_plain']['identical']}, token agreement "
         f"{w['fast_vs_plain']['token_agreement']}"),
    ]  # fmt: skip
