"""A synthetic world to train and test the models on: coloured shapes on pale backgrounds
(testing/shapes.py draws them, data/world.json says which), the CSVs `indexer finetune`
reads, a trained model set, and a photo library the models never saw.

Captions say exactly what is drawn: "a red circle". Entailment labels, for a picture of a
red circle: "yes" for its description, "no" for one that contradicts it by colour ("a blue
circle") or by shape ("a red square"). The world has no "maybe": with one object per
picture, nothing in a colour-shape description is left open (SNLI-VE's neutral needs a
hypothesis the picture cannot settle).

`trained_models(cache_dir)` trains the whole model set once (the product's own
`indexer finetune` on the tiny OFA folders, and the shapes CLIP) and reuses it while the
cache folder lives.
"""

from __future__ import annotations

import csv
import os
import random
from dataclasses import dataclass
from pathlib import Path

from testing.shapes import COLOURS, LABELS, SHAPES, WORLD, draw_shape, text_of

LIBRARY_EPOCH = 1_700_000_000  # the library's first picture: 2023-11-14
# the size of the random-weight OFA folders the world trains from (tests/models.py)
OFA_SIZE = "small"


def write_pictures(folder: Path, per_label: int, seed: int = 1) -> dict[Path, tuple[str, str]]:
    """`per_label` JPEGs of every colour/shape; path -> (colour, shape)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng, truth = random.Random(seed), {}
    for _ in range(per_label):
        for colour, shape in LABELS:  # neutral names: only the pixels say what is drawn
            path = folder / f"shape_{seed}_{len(truth):05d}.jpg"
            draw_shape(colour, shape, rng).save(path, quality=90)
            truth[path] = (colour, shape)
    return truth


def entailment_texts(colour: str, shape: str, rng: random.Random) -> list[tuple[str, str]]:
    """(text, label) pairs for a picture of one `colour` `shape`: its description ("yes")
    and one that contradicts it ("no"), by colour or by shape at random."""
    other_colour = rng.choice([c for c in COLOURS if c != colour])
    other_shape = rng.choice([s for s in SHAPES if s != shape])
    wrong = rng.choice([text_of(other_colour, shape), text_of(colour, other_shape)])
    return [(text_of(colour, shape), "yes"), (wrong, "no")]


def write_pairs_csv(path: Path, truth: dict[Path, tuple[str, str]]) -> Path:
    """A PAIRS CSV (`path,caption`, paths relative to the CSV's folder)."""
    rows = [(_relative(p, path), text_of(*label)) for p, label in truth.items()]
    return _write(path, ("path", "caption"), rows)


def write_labels_csv(path: Path, truth: dict[Path, tuple[str, str]], seed: int = 0) -> Path:
    """A LABELS CSV (`path,text,label`) with two texts per picture (yes, no)."""
    rng = random.Random(seed)
    rows = [(_relative(p, path), text, label)
            for p, (colour, shape) in truth.items()
            for text, label in entailment_texts(colour, shape, rng)]  # fmt: skip
    return _write(path, ("path", "text", "label"), rows)


def _relative(picture: Path, csv_path: Path) -> str:
    return str(picture.relative_to(csv_path.parent))


def _write(path: Path, header: tuple[str, ...], rows: list[tuple]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@dataclass(frozen=True)
class TrainedModels:
    """A complete trained model set: OFA captioner and entailment folders (as `indexer
    finetune` wrote them, with their reports) and a shapes CLIP `local-dir:` spec."""

    captioner: str
    judge: str
    clip: str
    caption_report: dict
    judge_report: dict


def train_world_models(folder: Path, on_step=None, seed: int = 0) -> TrainedModels:
    """Train the model set from random weights into `folder` with the product's own
    `finetune` and its defaults for small models (curate/finetune/recipe.py).

    The judge is trained second, from the trained captioner's weights: a curriculum, like
    the real OFA models, whose tasks all start from one pre-trained model. From random
    weights the judge learns at most the texts' form, never to look at the picture
    (curate/finetune/RECIPE.md has the runs)."""
    from curate.finetune import finetune
    from testing.models import make_ofa_folder, replace_weights
    from testing.shapes import train_shape_clip

    spec = WORLD["training"]
    truth = write_pictures(folder / "world", spec["pictures_per_label"], seed=spec["seed"])
    pairs = write_pairs_csv(folder / "world" / "pairs.csv", truth)
    labels = write_labels_csv(folder / "world" / "labels.csv", truth, seed=seed)
    captioner = folder / "trained-caption"
    base = make_ofa_folder(folder / "base-caption", task="caption", size=OFA_SIZE, seed=seed)
    captions = finetune("captions", pairs, base, captioner, device="cpu", seed=seed,
                        on_progress=on_step)  # fmt: skip
    base = make_ofa_folder(folder / "base-entailment", task="entailment", size=OFA_SIZE)
    replace_weights(base, captioner)
    judge = finetune("entailment", labels, base, folder / "trained-entailment", device="cpu",
                     seed=seed, on_progress=on_step)  # fmt: skip
    clip = train_shape_clip(folder / "clip", seed=seed, names=WORLD["clip_names"], prompts=True)
    return TrainedModels(str(captioner), judge.out, clip, captions.as_dict(), judge.as_dict())


def trained_models(cache_dir: Path, on_step=None) -> TrainedModels:
    """The model set trained once into `cache_dir` (a session-scoped temporary folder, or
    any folder kept between runs): trained on the first call, reused afterwards."""
    import json

    done = cache_dir / "trained.json"
    if done.is_file():
        return TrainedModels(**json.loads(done.read_text()))
    models = train_world_models(cache_dir, on_step)
    done.write_text(json.dumps(models.__dict__))
    return models


def write_library(folder: Path) -> dict[Path, tuple[str, str]]:
    """The world's photo library: pictures the models never saw (another seed), of every
    colour/shape but the world's `absent` ones, with only a few of the `rare` ones (whose
    searches are surrounded by look-alikes); path -> (colour, shape)."""
    spec = WORLD["library"]
    absent = {tuple(pair) for pair in spec["absent"]}
    truth = write_pictures(folder, spec["pictures_per_label"], seed=spec["seed"])
    kept = dict.fromkeys(rare_labels(), spec["rare"]["pictures"])
    for path, label in list(truth.items()):
        if label in absent or kept.get(label, 1) <= 0:
            path.unlink()
            del truth[path]
        elif label in kept:
            kept[label] -= 1
    for n, path in enumerate(sorted(truth)):  # taken an hour apart: no bursts
        os.utime(path, (LIBRARY_EPOCH + 3600 * n,) * 2)
    return truth | _copies(sorted(truth)[: spec["copies"]], truth)


def _copies(originals: list[Path], truth: dict) -> dict[Path, tuple[str, str]]:
    """For `indexer duplicates` to find: a byte-for-byte copy of the first original, and
    smaller re-encoded copies of the others."""
    import shutil

    from PIL import Image

    made = {}
    for n, original in enumerate(originals):
        copy = original.with_name(f"copy_{original.name}")
        if n == 0:
            shutil.copy2(original, copy)
        else:
            with Image.open(original) as picture:
                picture.resize((72, 72)).save(copy, quality=80)
        made[copy] = truth[original]
    return made


def rare_labels() -> list[tuple[str, str]]:
    """The colour/shape pairs the library has only a few pictures of."""
    return [tuple(pair) for pair in WORLD["library"]["rare"]["labels"]]


def absent_labels() -> list[tuple[str, str]]:
    """The colour/shape pairs the library leaves out."""
    return [tuple(pair) for pair in WORLD["library"]["absent"]]
