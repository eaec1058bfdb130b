"""Training settings: what the user asked for, and the defaults that fill in the rest.

Recipes, picked by the base model's width and the task:

* `PRETRAINED` (d_model >= 128: the damo distilled / base / large OFA models): the model
  card's fine-tuning recipe, scaled down for a few hundred of one's own photos: AdamW at a
  learning rate of 1e-5, 6 % warm-up then cosine decay, label smoothing 0.1, batch 8, three
  epochs; the ResNet stem keeps its pretrained batch-norm statistics (BatchNorm in eval
  mode, as OFA fine-tunes), and the whole network is trained.
* `SMALL` (captions; narrower models such as the tests' tiny ones, trained from random
  weights): learning rate 3e-3, batch 16, 400 steps, batch statistics in the stem, its first
  stage (conv1, bn1, layer1) left as initialised.
* `SMALL_ENTAILMENT` (a narrow judge, started from a trained narrow model): the whole stem
  kept as it is, with its stored statistics, and 2000 steps: comparing a text with the
  picture is learned late, after a long plateau.

RECIPE.md has the runs behind them. On the shapes world (testing/world.py; 2 CPU cores):
captions 97.5 % exactly right on held-out pictures after 400 steps (140 s), the judge 98.1 %
right (78/80 yes, 79/80 no) after 2000 steps (334 s); 98.75 % in an earlier run.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

SMALL_WIDTH = 128  # below this d_model, the SMALL recipes
SMALL_JUDGE_STEPS = 2000


@dataclass(frozen=True)
class Recipe:
    """Everything that decides a training run but the data and the model."""

    steps: int | None = None  # optimizer steps; None: from `epochs`
    epochs: float | None = None  # passes over the training rows (when `steps` is None)
    lr: float = 1e-5  # peak learning rate (AdamW)
    batch_size: int = 8
    warmup: float = 0.06  # fraction of the steps with a linearly rising learning rate
    weight_decay: float = 0.01
    label_smoothing: float = 0.1
    clip_norm: float = 1.0  # gradient norm clipping
    stem_statistics: str = "frozen"  # "frozen": BatchNorm in eval mode; "batch": train mode
    frozen_stem: tuple[str, ...] = ()  # stem modules (conv1, bn1, layer1, ...) not trained
    holdout: float = 0.1  # fraction of the pictures held out for the before/after figures
    seed: int = 0
    checkpoint_every: int | None = None  # steps; None: about ten checkpoints per run
    eval_limit: int = 500  # held-out rows measured at most (before and after)

    def as_dict(self) -> dict:
        values = asdict(self)
        values["frozen_stem"] = list(self.frozen_stem)
        return values


PRETRAINED = Recipe(epochs=3)
SMALL = Recipe(
    steps=400, lr=3e-3, batch_size=16, warmup=0.1, label_smoothing=0.0,
    stem_statistics="batch", frozen_stem=("conv1", "bn1", "layer1"),
)  # fmt: skip
# a small judge starts from a trained small model (a captioner): its stem already sees
# colours and shapes, and stays as it is while the transformer learns to compare
SMALL_ENTAILMENT = replace(
    SMALL, steps=SMALL_JUDGE_STEPS, stem_statistics="frozen",
    frozen_stem=("conv1", "bn1", "layer1", "layer2", "layer3"),
)  # fmt: skip


def default_recipe(d_model: int, task: str = "captions") -> Recipe:
    """The recipe for a base model of this width, for `task`."""
    if d_model >= SMALL_WIDTH:
        return PRETRAINED
    return SMALL_ENTAILMENT if task == "entailment" else SMALL


def with_overrides(recipe: Recipe, **given) -> Recipe:
    """`recipe` with the values the user gave (None: not given). Giving `epochs` without
    `steps` makes the run as long as those epochs."""
    given = {name: value for name, value in given.items() if value is not None}
    if "epochs" in given and "steps" not in given:
        given["steps"] = None
    recipe = replace(recipe, **given)
    check(recipe)
    return recipe


def check(recipe: Recipe) -> None:
    """ValueError with one line for a setting that cannot work."""
    if recipe.steps is None and recipe.epochs is None:
        raise ValueError("say how long to train: --steps N or --epochs N")
    if recipe.steps is not None and recipe.steps < 1:
        raise ValueError(f"--steps must be at least 1, not {recipe.steps}")
    if recipe.epochs is not None and recipe.epochs <= 0:
        raise ValueError(f"--epochs must be more than 0, not {recipe.epochs}")
    if not recipe.lr > 0:
        raise ValueError(f"--lr must be more than 0, not {recipe.lr}")
    if recipe.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, not {recipe.batch_size}")
    if not 0 <= recipe.holdout < 1:
        raise ValueError(f"--holdout must be a fraction from 0 to below 1, not {recipe.holdout}")
    if recipe.stem_statistics not in ("frozen", "batch"):
        raise ValueError(f"stem statistics must be frozen or batch, not {recipe.stem_statistics}")


def total_steps(recipe: Recipe, train_rows: int) -> int:
    """The run's length in optimizer steps."""
    if recipe.steps is not None:
        return recipe.steps
    return max(1, math.ceil(recipe.epochs * train_rows / recipe.batch_size))


def learning_rate(recipe: Recipe, step: int, total: int) -> float:
    """Linear warm-up to `lr`, then cosine decay to zero, for step `step` of `total`."""
    warm = int(recipe.warmup * total)
    if step < warm:
        return recipe.lr * (step + 1) / warm
    progress = (step - warm) / max(1, total - warm)
    return recipe.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def checkpoint_interval(recipe: Recipe, total: int) -> int:
    return recipe.checkpoint_every or max(25, math.ceil(total / 10))
