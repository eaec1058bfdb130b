"""`indexer finetune`: fine-tune the OFA captioner or the OFA entailment judge on one's own
photos, through ModelScope's own OFA model and preprocessing, and write the result as a
ModelScope model folder that `--caption-model` / `--rerank-model` accept.

    from curate.finetune import finetune
    report = finetune("captions", "pairs.csv", base="damo/ofa_image-caption_coco_distilled_en",
                      out="my-captioner", steps=200)

Modules: data (CSV rows, split), model (the base model, loss, output folder), recipe
(settings and defaults), loop (one step), train (the run), evaluate (before / after),
outdir (--out, record, checkpoints). RECIPE.md holds the measurements behind the defaults.
"""

from .data import ANSWERS, TASKS, Problem, Row
from .recipe import PRETRAINED, SMALL, Recipe
from .train import FinetuneReport, TrainingProgress, finetune

__all__ = [
    "ANSWERS", "TASKS", "PRETRAINED", "SMALL", "FinetuneReport", "Problem", "Recipe", "Row",
    "TrainingProgress", "finetune",
]  # fmt: skip
