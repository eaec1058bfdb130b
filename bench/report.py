"""Run the benchmark parts and lay the figures out as tables."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

from .measure import peak_memory_mb, table, timed

QUERIES = [
    "a dog running on the beach", "two people at a table", "a red car", "food on a plate",
    "a city street at night", "mountains and a lake", "a birthday cake", "a cat on a sofa",
]  # fmt: skip


def machine() -> dict:
    """What the figures were measured on."""
    import torch

    return {"cpu_cores": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}  # fmt: skip


def load_models(specs: dict, options) -> dict:
    """Every model variant the measurements compare, loaded once."""
    from indexer.caption import OfaCaptioner
    from indexer.embed import ClipEmbedder

    device, batch = options.device, options.batch_size
    return {
        "caption_plain": OfaCaptioner(specs["caption"], device, batch, profile="plain"),
        "caption_default": OfaCaptioner(specs["caption"], device, batch, profile="exact"),
        "caption_fast": OfaCaptioner(specs["caption"], device, batch, profile="fast"),
        "clip_fp32": ClipEmbedder(specs["clip"], device, precision="fp32"),
        "clip_default": ClipEmbedder(specs["clip"], device, precision="auto"),
    }


def indexing(options, specs: dict, workdir: Path) -> dict:
    """Stage throughput, the straightforward loop and `indexer build`, in one process."""
    from indexer.decode import decode_image
    from indexer.models import ModelSet

    from . import indexing as bench

    photos = bench.make_photos(workdir / "photos", options.photos)
    loaded = load_models(specs, options)
    pictures = [decode_image(str(path)).image for path in photos]
    out: dict = {"photos": len(photos), "photo_size": "4000x3000 JPEG"}
    out["loop_images_min"] = bench.straightforward_loop(
        photos[: options.loop_photos], loaded["caption_plain"], loaded["clip_fp32"]
    )
    out["decode_images_s"] = bench.decode_stage(photos, options.workers)
    out["clip_fp32"] = bench.clip_stage(pictures, loaded["clip_fp32"])
    out["clip_default"] = bench.clip_stage(pictures, loaded["clip_default"])
    for name in ("caption_plain", "caption_default", "caption_fast"):
        batch = 1 if name == "caption_plain" else options.batch_size
        out[f"{name}_images_s"] = bench.caption_stage(pictures, loaded[name], batch)
    for profile in ("default", "fast"):
        models = ModelSet(specs["caption"], specs["clip"], lambda p=profile: loaded[f"caption_{p}"],
                          lambda: loaded["clip_default"])  # fmt: skip
        rate = bench.pipeline_build(workdir / "photos", models, options.batch_size,
                                    options.workers)  # fmt: skip
        out[f"build_{profile}_images_min"] = rate
        out[f"build_{profile}_speedup"] = rate / out["loop_images_min"]
    out["clip_min_cosine_vs_fp32"] = bench.vector_agreement(
        pictures, loaded["clip_fp32"], loaded["clip_default"]
    )
    out["fast_captions_vs_plain"] = bench.caption_agreement(
        pictures, loaded["caption_plain"], loaded["caption_fast"]
    )
    out["default_captions_vs_plain"] = bench.caption_agreement(
        pictures, loaded["caption_plain"], loaded["caption_default"]
    )
    out["memory"] = peak_memory_mb()
    return out


def queries(options, specs: dict, workdir: Path) -> dict:
    """Whole-query latency on an index of the generated photos, with and without rerank."""
    from indexer.build import build_index
    from indexer.caption import OfaCaptioner
    from indexer.embed import ClipEmbedder
    from indexer.models import ModelSet
    from search.engine import SearchEngine
    from search.rerank import OfaEntailmentReranker

    from . import indexing as bench
    from .queries import engine_latency

    photos = workdir / "photos"
    if not photos.exists():
        bench.make_photos(photos, options.photos)
    index = workdir / "query-index"
    embedder = ClipEmbedder(specs["clip"], options.device, precision="auto")
    models = ModelSet(specs["caption"], specs["clip"],
                      lambda: OfaCaptioner(specs["caption"], options.device, options.batch_size),
                      lambda: embedder)  # fmt: skip
    build_index([photos], index, models, batch_size=options.batch_size)
    reranker = OfaEntailmentReranker(specs["rerank"], options.device)
    engine = SearchEngine(index, load_embedder=lambda spec: embedder,
                          load_reranker=lambda: reranker)  # fmt: skip
    out = {"library": options.photos,
           "no_rerank": engine_latency(engine, QUERIES, rerank=False),
           "rerank_top10": engine_latency(engine, QUERIES, rerank=True)}  # fmt: skip
    engine.close()
    out["cli_help_s"] = round(
        timed(
            lambda: subprocess.run(
                [sys.executable, "-m", "indexer.cli", "--help"], capture_output=True, check=True
            )
        ),
        2,
    )
    return out


def run_all(options, specs: dict, workdir: Path) -> tuple[dict, str]:
    """Every part not skipped; returns (results, printable text)."""
    from .scale import sweep

    skip = set(filter(None, options.skip.split(",")))
    results: dict = {"machine": machine(), "models": specs, "size": options.size}
    if "indexing" not in skip:
        results["indexing"] = indexing(options, specs, workdir)
    if "queries" not in skip:
        results["queries"] = queries(options, specs, workdir)
    if "world" not in skip:
        from .world import world_captions

        results["world"] = world_captions(options, Path(options.world_cache))
    from .speed import run_speed_parts

    results.update(run_speed_parts(options, specs, workdir, skip))
    if "sweep" not in skip:
        sizes = [int(n) for n in options.vectors.split(",") if n]
        results["sweep"] = sweep(sizes, specs["clip"], options.device, workdir)
    return results, render(results)


def render(results: dict) -> str:
    """The results as plain-text tables."""
    parts = [f"machine: {results['machine']}"]
    if "indexing" in results:
        parts.append(_indexing_table(results["indexing"]))
    if "queries" in results:
        q = results["queries"]
        rows = [("query", "p50 ms", "p90 ms")]
        for name in ("no_rerank", "rerank_top10"):
            rows.append((name, q[name]["p50_ms"], q[name]["p90_ms"]))
        parts.append(table(f"Queries on {q['library']} photos (20 each, models loaded once; "
                           f"`indexer --help` {q['cli_help_s']} s)", rows))  # fmt: skip
    if "world" in results:
        from .world import world_table

        w = results["world"]
        rows = [("stage", "rate", "note"), *world_table(w)]
        parts.append(table(f"Captioning {w['pictures']} pictures of the shapes world with its "
                           f"trained tiny captioner (held-out exact match "
                           f"{w['held_out_exact_match']:.1%})", rows))  # fmt: skip
    from .speed import speed_tables

    parts += speed_tables(results)
    if "sweep" in results:
        from .scale import sweep_table

        parts.append(sweep_table(results["sweep"]))
    return "\n\n".join(parts)


def _indexing_table(ix: dict) -> str:
    rows = [
        ("stage", "rate", "note"),
        ("straightforward loop", f"{ix['loop_images_min']:.1f} images/min",
         "full decode, caption, embed, one photo at a time"),
        ("decode (worker pool)", f"{ix['decode_images_s']:.1f} images/s", "JPEG draft mode"),
        ("CLIP fp32", f"{ix['clip_fp32']['stage_images_s']} images/s",
         f"model only {ix['clip_fp32']['model_only_images_s']}/s, "
         f"stage {ix['clip_fp32']['stage_share']:.0%} of it"),
        ("CLIP default (auto precision)", f"{ix['clip_default']['stage_images_s']} images/s",
         f"model only {ix['clip_default']['model_only_images_s']}/s, stage "
         f"{ix['clip_default']['stage_share']:.0%}; min cosine vs fp32 "
         f"{ix['clip_min_cosine_vs_fp32']:.4f}"),
        ("caption, unmodified", f"{ix['caption_plain_images_s']:.2f} images/s", "batch 1"),
        ("caption, default (exact)", f"{ix['caption_default_images_s']:.2f} images/s",
         f"identical to unmodified: {ix['default_captions_vs_plain']['identical']}"),
        ("caption, --fast", f"{ix['caption_fast_images_s']:.2f} images/s",
         f"identical: {ix['fast_captions_vs_plain']['identical']}, token agreement "
         f"{ix['fast_captions_vs_plain']['token_agreement']}"),
        ("indexer build (default)", f"{ix['build_default_images_min']:.1f} images/min",
         f"{ix['build_default_speedup']:.2f}x the loop"),
        ("indexer build --fast", f"{ix['build_fast_images_min']:.1f} images/min",
         f"{ix['build_fast_speedup']:.2f}x the loop"),
    ]  # fmt: skip
    memory = ix["memory"]
    title = (
        f"Indexing {ix['photos']} photos ({ix['photo_size']}); peak memory "
        f"{memory['process_mb']} MB (+ decode workers {memory['largest_child_mb']} MB)"
    )
    return table(title, rows)
