"""The training run: survey the CSV, load the base model, measure, train with checkpoints,
measure again, save the folder. A plain PyTorch loop over ModelScope's own OFA model and
preprocessing (ModelScope's OFATrainer wants a work folder of its own, an MsDataset and a
configuration with a `train` section, and offers no resumable progress reporting).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from indexer.errors import IndexerError
from indexer.hub import modelscope_model_dir
from indexer.progress import Progress

from . import outdir
from .data import Problem, Survey, load_picture, split_rows, survey, training_rows
from .evaluate import Metrics, evaluate
from .model import ROLES, Trainee
from .recipe import Recipe, checkpoint_interval, default_recipe, total_steps
from .recipe import with_overrides as _with_overrides


@dataclass
class TrainingProgress(Progress):
    """Sent to the progress callback: `done` of `total` steps (or held-out rows while
    `phase` is "measuring before" / "measuring after"), the mean loss of the last steps and
    the training speed in pictures per second."""

    phase: str = "training"
    loss: float | None = None
    images_per_second: float | None = None


@dataclass
class FinetuneReport:
    """What a run did: the model folder, the steps, the held-out figures before and after,
    and the CSV rows that were skipped."""

    task: str
    out: str
    base: str
    steps: int
    train_rows: int
    held_out_rows: int
    seconds: float
    before: Metrics
    after: Metrics
    recipe: Recipe
    problems: list[Problem] = field(default_factory=list)
    resumed_from: int | None = None

    def as_dict(self) -> dict:
        return {
            "task": self.task, "out": self.out, "base": self.base, "steps": self.steps,
            "resumed_from": self.resumed_from, "train_rows": self.train_rows,
            "held_out_rows": self.held_out_rows, "seconds": round(self.seconds, 1),
            "before": self.before.as_dict(), "after": self.after.as_dict(),
            "settings": self.recipe.as_dict(),
            "skipped": [{"line": p.line, "path": p.path, "reason": p.reason}
                        for p in self.problems],
        }  # fmt: skip


def finetune(
    task: str,
    csv_path: str | os.PathLike,
    base: str,
    out: str | os.PathLike,
    device: str = "auto",
    resume: bool = False,
    on_progress: Callable[[TrainingProgress], None] | None = None,
    trust_remote_code: bool = False,
    **settings,
) -> FinetuneReport:
    """Fine-tune the OFA model `base` for `task` ("captions" or "entailment") on the rows of
    `csv_path`, writing a ModelScope model folder to `out`. `settings` are Recipe fields
    (None: the default for the base model's size, see recipe.py); with `resume` they come
    from the interrupted run instead."""
    report = on_progress or (lambda progress: None)
    started = time.monotonic()
    base_folder = modelscope_model_dir(base, ROLES[task], "--base")
    outdir.check_out(out, task, resume, base_folder)
    found = survey(csv_path, task, _holdout(settings, resume, out))
    if found.train == 0:
        raise IndexerError(f"{csv_path}: no usable training row ({len(found.problems)} skipped,"
                           f" {found.held_out} held out)")  # fmt: skip
    trainee = Trainee(task, base, device, trust_remote_code)
    folder = outdir.prepare_out(out, task, resume, base_folder)
    optimizer_state = None
    if resume:
        recipe, start, optimizer_state, record = _resumed(folder, trainee, found, settings)
    else:
        recipe = _with_overrides(default_recipe(trainee.d_model, task), **settings)
        start, record = 0, _new_record(task, base, trainee, found, recipe)
        record["before"] = _measure(trainee, found, recipe, "measuring before", report).as_dict()
    total = total_steps(recipe, found.train)
    record.update(total_steps=total, finished=False)
    outdir.write_record(folder, record)
    _train(trainee, found, recipe, folder, record, (start, total, optimizer_state), report)
    after = _measure(trainee, found, recipe, "measuring after", report)
    trainee.save(folder)
    record.update(after=after.as_dict(), finished=True, step=total)
    outdir.write_record(folder, record)
    return FinetuneReport(task, str(folder), base, total, found.train, found.held_out,
                          time.monotonic() - started, Metrics(**record["before"]), after,
                          recipe, found.problems, start if resume else None)  # fmt: skip


def _holdout(settings: dict, resume: bool, out) -> float:
    if resume:
        record = outdir.read_record(Path(out).expanduser().absolute()) or {}
        return record.get("settings", {}).get("holdout", Recipe.holdout)
    holdout = settings.get("holdout")
    return Recipe.holdout if holdout is None else holdout


def _new_record(task: str, base: str, trainee: Trainee, found: Survey, recipe: Recipe) -> dict:
    import modelscope
    import torch

    return {
        "command": f"indexer finetune {task}", "task": task, "base": base,
        "base_folder": trainee.folder,
        "data": {"csv": found.csv_path, "sha256": found.sha256, "train_rows": found.train,
                 "held_out_rows": found.held_out, "skipped_rows": len(found.problems)},
        "settings": recipe.as_dict(), "step": 0,
        "versions": {"modelscope": modelscope.__version__, "torch": torch.__version__},
    }  # fmt: skip


def _resumed(folder: Path, trainee: Trainee, found: Survey, settings: dict):
    """The interrupted run's recipe (--steps / --epochs may extend it), step, optimizer
    state and record; its weights are loaded into the trainee."""
    record = outdir.read_record(folder)
    if record.get("data", {}).get("sha256") != found.sha256:
        raise IndexerError(f"{found.csv_path} has changed since the run in {folder} began; "
                           "start again without --resume")  # fmt: skip
    if os.path.abspath(record.get("base_folder", "")) != os.path.abspath(trainee.folder):
        raise IndexerError(f"the run in {folder} was trained from {record.get('base')!r}, "
                           f"not {trainee.base!r}")  # fmt: skip
    values = dict(record["settings"])
    values["frozen_stem"] = tuple(values.get("frozen_stem", ()))
    recipe = _with_overrides(Recipe(**values), steps=settings.get("steps"),
                             epochs=settings.get("epochs"))  # fmt: skip
    state = outdir.load_checkpoint(folder, trainee.device)
    trainee.net.load_state_dict(state["model"])
    record["settings"] = recipe.as_dict()
    return recipe, int(state["step"]), state["optimizer"], record


def _measure(trainee, found, recipe, phase, report) -> Metrics:
    total = min(found.held_out, recipe.eval_limit)
    report(TrainingProgress(0, total, phase))
    rows = split_rows(found, held=True)
    return evaluate(trainee, rows, recipe.eval_limit,
                    lambda done: report(TrainingProgress(done, total, phase)))  # fmt: skip


def _train(trainee, found, recipe, folder, record, position, report) -> None:
    from .loop import Loop

    start, total, optimizer_state = position
    loop = Loop(trainee, recipe, total)
    if optimizer_state is not None:
        loop.optimizer.load_state_dict(optimizer_state)
    rows = training_rows(found, recipe.seed, skip=start * recipe.batch_size)
    every = checkpoint_interval(recipe, total)
    report(TrainingProgress(start, total))
    step = start
    try:
        while step < total:
            batch = [(row, load_picture(row.path)) for row in islice(rows, recipe.batch_size)]
            loop.step(step, [(row, p) for row, p in batch if not isinstance(p, str)])
            step += 1
            report(TrainingProgress(step, total, loss=loop.recent_loss,
                                    images_per_second=loop.images_per_second))  # fmt: skip
            if step % every == 0 and step < total:
                _checkpoint(folder, loop, record, step)
    except KeyboardInterrupt:
        if step > start:
            _checkpoint(folder, loop, record, step)
        raise
    finally:
        loop.close()
    _checkpoint(folder, loop, record, step)


def _checkpoint(folder: Path, loop, record: dict, step: int) -> None:
    outdir.save_checkpoint(folder, loop.state(step))
    record["step"] = step
    outdir.write_record(folder, record)
