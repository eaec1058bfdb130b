"""`make demo`: the shapes world as a photo library to search, with no downloads.

Trains the world's models (testing/world.py: the product's own `indexer finetune` on tiny
OFA models, and a small CLIP) into data/world/models once, writes the library's pictures
into data/world/photos, indexes them into data/world/index and serves the search page on
127.0.0.1, with a banner saying what it is. Everything it writes is under data/world/ (git
ignores it); a second run reuses it and starts the page at once.

    python -m testing.demo [--port 8501] [--no-ui]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from testing.world import trained_models, write_library

ROOT = Path(__file__).resolve().parent.parent / "data" / "world"
BANNER = (
    "Demo: synthetic pictures of coloured shapes, captioned, judged and embedded by tiny "
    "models trained on them (no real photos, no downloaded models). Try “a red circle”, "
    "“a green triangle” (there are none) or the Audit page."
)


def demo_environment(root: Path = ROOT, say=print) -> dict[str, str]:
    """Train (or reuse) the models, write and index the library; the environment that
    points `indexer` at it."""
    started = time.monotonic()
    say(f"models: {root / 'models'} (trained on the first run: a few minutes)")
    models = trained_models(root / "models", on_step=_every_hundred(say))
    photos = root / "photos"
    if not photos.is_dir():
        write_library(photos)
    env = dict(
        os.environ,
        INDEXER_HOME=str(root / "index"),
        INDEXER_CAPTION_MODEL=models.captioner,
        INDEXER_CLIP_MODEL=models.clip,
        INDEXER_RERANK_MODEL=models.judge,
        INDEXER_DEVICE="cpu",
        INDEXER_BANNER=BANNER,
    )
    say(f"indexing {photos}")
    subprocess.run([sys.executable, "-m", "indexer.cli", "build", str(photos)], env=env,
                   check=True)  # fmt: skip
    say(f"ready in {time.monotonic() - started:.0f} s")
    return env


def write_examples(folder: Path, photos: Path = ROOT / "photos") -> list[Path]:
    """The example files of data/examples, made from the library's truth: a fine-tuning
    CSV of captions, one of entailment labels, an audit CSV with some wrong descriptions,
    and a tag label list. Paths are relative to `folder` (CSV rows are read that way)."""
    import csv
    import random
    import tempfile

    from testing.shapes import COLOURS
    from testing.world import entailment_texts, text_of

    with tempfile.TemporaryDirectory() as scratch:  # the names and labels, not the pixels
        truth = sorted((p.name, label) for p, label in write_library(Path(scratch)).items())
    rng = random.Random(5)
    chosen = [(os.path.relpath(photos / name, folder), label) for name, label in truth[::4]]
    rows = {
        "captions.csv": [("path", "caption")] + [(p, text_of(*label)) for p, label in chosen],
        "labels.csv": [("path", "text", "label")]
        + [(p, text, verdict) for p, label in chosen
           for text, verdict in entailment_texts(*label, rng)],
        "audit.csv": [("path", "text")]
        + [(p, text_of(*label) if n % 3 else entailment_texts(*label, rng)[1][0])
           for n, (p, label) in enumerate(chosen)],
    }  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, table in rows.items():
        with open(folder / name, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle, lineterminator="\n").writerows(table)
        written.append(folder / name)
    (folder / "tags.txt").write_text(",".join(COLOURS) + "\n", encoding="utf-8")
    return [*written, folder / "tags.txt"]


def _every_hundred(say):
    def report(progress) -> None:
        if progress.phase == "training" and progress.done % 100 == 0:
            say(f"  {progress.done}/{progress.total} steps, loss {progress.loss:.3f}")

    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m testing.demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, default=8501)
    parser.add_argument("--no-ui", action="store_true", help="prepare the demo, do not serve it")
    args = parser.parse_args(argv)
    env = demo_environment()
    if args.no_ui:
        print(f"INDEXER_HOME={env['INDEXER_HOME']}")
        return
    command = [sys.executable, "-m", "indexer.cli", "ui", "--port", str(args.port)]
    os.execve(command[0], command, env)


if __name__ == "__main__":
    main()
