"""Builds as a user meets them: whole commands (imports and model loading included), and
how soon a first build makes every photo searchable.

- `whole_commands`: the straightforward loop (bench/loop.py) against `indexer build` in its
  profiles, each a fresh process on the same photos, on a case like the issue's: 48 photos,
  4 of them 12 MP, the rest 3 MP. The fixed start-up of a build (imports, model loading) is
  worked out from two runs of different lengths: t(n) = start-up + n x per photo. The
  default build reads the text in photos (OCR); the same build with `--no-ocr` beside it
  gives what reading text costs (issue 13's goal: at most 1.25x), and the text pass's own
  wall time (bench/timed_build.py) its share of the build.
- `searchable_early`: a default first build of 200 photos through the library, timing when
  its CLIP pass has made every photo searchable, when its text pass has read them all and
  when its captions are all done.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

from .memory import run_measured

LARGE, SMALL = (4000, 3000), (2000, 1500)


def make_case(folder: Path, count: int, large: int) -> Path:
    """`count` JPEG photos, `large` of them 12 MP and the rest 3 MP."""
    from .indexing import make_photos

    if folder.exists():
        return folder
    make_photos(folder / "large", large, LARGE)
    make_photos(folder / "small", count - large, SMALL)
    for n, path in enumerate(sorted((folder / "large").glob("*.jpg"))):
        path.rename(folder / f"large_{n:03d}.jpg")
    for n, path in enumerate(sorted((folder / "small").glob("*.jpg"))):
        path.rename(folder / f"small_{n:03d}.jpg")
    (folder / "large").rmdir()
    (folder / "small").rmdir()
    return folder


def _environment(specs: dict, index: Path) -> dict:
    env = dict(os.environ, INDEXER_OFFLINE="1", INDEXER_HOME=str(index))
    env.update(INDEXER_CAPTION_MODEL=specs["caption"], INDEXER_CLIP_MODEL=specs["clip"])
    for name in ("INDEXER_PROFILE", "INDEXER_CAPTIONS", "INDEXER_BATCH_SIZE", "INDEXER_OCR"):
        env.pop(name, None)
    return env


def build_seconds(photos: Path, specs: dict, workdir: Path, *flags: str) -> tuple[float, float]:
    """(seconds, peak MB of its process tree) of `indexer build PHOTOS FLAGS` into a fresh
    index."""
    seconds, peak, _ = timed_build(photos, specs, workdir, *flags)
    return seconds, peak


def timed_build(photos: Path, specs: dict, workdir: Path, *flags: str) -> tuple[float, float, dict]:
    """`build_seconds` and the wall seconds of the build's later passes ({"text_s",
    "captions_s"}, bench/timed_build.py)."""
    index, times = workdir / "command-index", workdir / "command-times.json"
    shutil.rmtree(index, ignore_errors=True)
    times.unlink(missing_ok=True)
    command = [sys.executable, "-m", "bench.timed_build", str(times), "build", str(photos), *flags]
    try:
        seconds, peak = run_measured(command, _environment(specs, index))
        return seconds, peak, json.loads(times.read_text())
    finally:
        shutil.rmtree(index, ignore_errors=True)


BUILDS = {"default": (), "no_ocr": ("--no-ocr",), "captions_now": ("--captions", "now"),
          "fast": ("--fast",)}  # fmt: skip
COMMAND_PARTS = ("loop", *BUILDS, "start_up")


def whole_commands(
    specs: dict, workdir: Path, count: int = 48, large: int = 4, parts=COMMAND_PARTS
) -> dict:
    """Images/min of the loop and of each build profile of `parts` (see COMMAND_PARTS) as
    commands, the start-up, and what reading text costs the default build."""
    photos = make_case(workdir / "command-photos", count, large)
    out: dict = {"photos": count, "large_photos": large, "builds": []}
    loop_s = None
    if "loop" in parts:
        loop = [sys.executable, "-m", "bench.loop", str(photos), "--caption-model",
                specs["caption"], "--clip-model", specs["clip"]]  # fmt: skip
        loop_s, _ = run_measured(loop, _environment(specs, workdir / "unused"))
        out.update(loop_s=round(loop_s, 1), loop_images_min=round(60 * count / loop_s, 1))
    for name, flags in BUILDS.items():
        if name not in parts:
            continue
        seconds, peak_mb, passes = timed_build(photos, specs, workdir, *flags)
        out["builds"].append(name)
        out[f"build_{name}_load"] = round(os.getloadavg()[1], 1)  # other work, 5-minute mean
        out[f"build_{name}_s"] = round(seconds, 1)
        out[f"build_{name}_peak_mb"] = round(peak_mb)
        out[f"build_{name}_images_min"] = round(60 * count / seconds, 1)
        out[f"build_{name}_speedup"] = round(loop_s / seconds, 2) if loop_s else None
        out[f"build_{name}_text_s"] = passes.get("text_s", 0.0)
        out[f"build_{name}_captions_s"] = passes.get("captions_s", 0.0)
    if "default" in parts and "no_ocr" in parts:
        out["ocr"] = ocr_cost(out)
    if "start_up" in parts and "default" in parts:
        few, few_count = workdir / "command-few", max(2, count // 6)
        few.mkdir(exist_ok=True)
        for path in sorted(photos.glob("*.jpg"))[:few_count]:  # 12 MP ones first
            shutil.copy(path, few / path.name)
        few_s, _ = build_seconds(few, specs, workdir)
        per_photo = (out["build_default_s"] - few_s) / (count - few_count)
        out["start_up_s"] = round(few_s - few_count * per_photo, 1)
    return out


def ocr_cost(out: dict) -> dict:
    """What reading text costs the default build: its time over the `--no-ocr` build's
    (the goal: at most 1.25), and the text pass's wall time and share of the build."""
    with_ocr, without = out["build_default_s"], out["build_no_ocr_s"]
    text_s = out["build_default_text_s"]
    return {"with_s": with_ocr, "without_s": without, "ratio": round(with_ocr / without, 3),
            "text_pass_s": text_s, "text_pass_share": round(text_s / with_ocr, 3),
            "text_pass_photos_min": round(60 * out["photos"] / text_s, 1) if text_s else None,
            "goal_ratio": 1.25, "goal_met": with_ocr / without <= 1.25}  # fmt: skip


def searchable_early(specs: dict, workdir: Path, count: int = 200) -> dict:
    """Seconds until a default first build has made every photo searchable by CLIP, and
    until it is complete (models loaded by the build itself, as `indexer build` does)."""
    from indexer.build import build_index
    from indexer.config import load_settings
    from indexer.models import models_from_settings

    photos = make_case(workdir / "early-photos", count, large=count // 12)
    index = workdir / "early-index"
    chosen = {"index_dir": index, "caption_model": specs["caption"], "clip_model": specs["clip"]}
    settings = load_settings(dict(chosen, device="cpu"), environ={})
    marks: dict[str, float] = {}
    start = time.perf_counter()

    def on_progress(progress) -> None:  # the CLIP pass is over when a later pass reports
        if progress.phase in ("text", "captions") and "searchable" not in marks:
            marks["searchable"] = time.perf_counter() - start
        if progress.phase == "captions" and "text_read" not in marks:
            marks["text_read"] = time.perf_counter() - start

    report = build_index([photos], index, models_from_settings(settings), on_progress=on_progress)
    complete = time.perf_counter() - start
    shutil.rmtree(index, ignore_errors=True)
    return {"photos": count, "searchable_s": round(marks.get("searchable", complete), 1),
            "text_read_s": round(marks.get("text_read", complete), 1),
            "complete_s": round(complete, 1), "captioned": report.captioned,
            "text_read": report.text_read}  # fmt: skip
