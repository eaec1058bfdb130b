"""`indexer finetune captions|entailment`: a thin layer over curate.finetune, registered as
an `indexer` command through an entry point."""

from __future__ import annotations

import json
import sys

import click

from indexer.cli import fail, one_line_errors, quiet_model_logs, settings_from
from indexer.config import DEFAULT_CAPTION_MODEL, DEFAULT_RERANK_MODEL_CPU
from indexer.options import device_option, json_option, trust_remote_code_option
from indexer.progress import progress_bar


def _training_options(command):
    options = [
        click.option("--base", help="ModelScope model id or folder to start from "
                     "[default: the model `indexer` uses by default].", default=None),
        click.option("--out", required=True, type=click.Path(file_okay=False),
                     help="Folder for the trained model (new, empty, or an earlier run of "
                     "this command)."),
        click.option("--steps", type=click.IntRange(min=1),
                     help="Optimizer steps [default: 400 for small models, else 3 epochs]."),
        click.option("--epochs", type=click.FloatRange(min=0, min_open=True),
                     help="Passes over the training rows (instead of --steps)."),
        click.option("--lr", type=click.FloatRange(min=0, min_open=True),
                     help="Peak learning rate [default: 3e-3 small models, 1e-5 others]."),
        click.option("--batch-size", type=click.IntRange(min=1),
                     help="Rows per step [default: 16 small models, 8 others]."),
        click.option("--holdout", type=click.FloatRange(0, 1, max_open=True),
                     help="Fraction of the pictures held out to measure before and after, "
                     "chosen by a hash of the path [default: 0.1]."),
        click.option("--seed", type=int, help="Seed for shuffling and dropout [default: 0]."),
        click.option("--resume", is_flag=True,
                     help="Continue the interrupted or finished run in --out from its last "
                     "checkpoint, with its settings (--steps may make it longer)."),
        device_option, trust_remote_code_option,
        json_option("Print the report as JSON."), one_line_errors,
    ]  # fmt: skip
    for option in reversed(options):
        command = option(command)
    return command


@click.group()
def finetune():
    """Fine-tune the OFA caption model or the OFA entailment judge on your own photos; the
    result is a ModelScope model folder for --caption-model / --rerank-model.

    \b
    Example:
        indexer finetune captions pairs.csv --out ./my-captioner
        indexer finetune entailment labels.csv --out ./my-judge
        indexer build ./photos --caption-model ./my-captioner
    """


@finetune.command()
@click.argument("pairs", type=click.Path(dir_okay=False))
@_training_options
def captions(pairs, **options):
    """Teach the captioner your vocabulary (product names, species, places): PAIRS is a CSV
    of path,caption rows (header optional; relative paths from the CSV's folder). Rows with
    a missing or undecodable picture or an empty caption are reported and skipped. Prints
    held-out exact-match and token accuracy before and after.

    \b
    Example:
        indexer finetune captions pairs.csv --out ./my-captioner
        indexer finetune captions pairs.csv --out ./my-captioner --epochs 5 --device cuda
        indexer finetune captions pairs.csv --out ./my-captioner --resume
        indexer build ./photos --caption-model ./my-captioner
    """
    _run("captions", pairs, options.pop("base") or DEFAULT_CAPTION_MODEL, **options)


@finetune.command()
@click.argument("labels", type=click.Path(dir_okay=False))
@_training_options
def entailment(labels, **options):
    """Teach the entailment judge your own verdicts: LABELS is a CSV of path,text,label rows
    with label yes, no or maybe (an `indexer audit` report with a corrected verdict column
    is one). Prints held-out accuracy and a confusion table before and after.

    \b
    Example:
        indexer finetune entailment labels.csv --out ./my-judge
        indexer audit listings.csv -o report.csv   # correct the verdicts, then:
        indexer finetune entailment report.csv --out ./my-judge --steps 300
        indexer search "red running shoes" --rerank-model ./my-judge
    """
    _run("entailment", labels, options.pop("base") or DEFAULT_RERANK_MODEL_CPU, **options)


def _run(task, csv_path, base, out, device, trust_remote_code, as_json, resume, **recipe):
    from curate.finetune import finetune as run_finetune

    settings = settings_from(device=device, trust_remote_code=trust_remote_code)
    quiet_model_logs()
    bar = progress_bar(sys.stderr.isatty() and not as_json, "training", info=_training_info)
    with bar as on_progress:
        try:
            report = run_finetune(task, csv_path, base, out, settings.device, resume,
                                  on_progress, settings.trust_remote_code, **recipe)  # fmt: skip
        except KeyboardInterrupt:
            fail(f"interrupted; continue with: indexer finetune {task} {csv_path} --out {out} "
                 "--resume", 130)  # fmt: skip
    for problem in report.problems:
        click.echo(f"skipped: {problem}", err=True)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    else:
        for line in report_lines(report):
            click.echo(line)


def report_lines(report) -> list[str]:
    """The report as readable lines: the run, then the figures before and after."""
    resumed = f", resumed at step {report.resumed_from}" if report.resumed_from else ""
    lines = [
        f"trained {report.base} for {report.steps} steps on {report.train_rows} rows "
        f"in {report.seconds:.0f} s{resumed}: {report.out}",
        f"held out: {report.held_out_rows} rows; skipped: {len(report.problems)} rows",
    ]
    if report.task == "captions":
        for name, key in (("exact match", "exact_match"), ("token accuracy", "token_accuracy")):
            lines.append(f"{name:<15} before {_share(report.before, key)}  "
                         f"after {_share(report.after, key)}")  # fmt: skip
        return lines
    lines.append(f"accuracy  before {_share(report.before, 'accuracy')}  "
                 f"after {_share(report.after, 'accuracy')}")  # fmt: skip
    for title, metrics in (("before", report.before), ("after", report.after)):
        lines += _confusion(title, metrics.confusion)
    return lines


def _share(metrics, key: str) -> str:
    value = getattr(metrics, key)
    return "-" if value is None else f"{value:.1%}"


def _confusion(title: str, table: dict | None) -> list[str]:
    if not table:
        return []
    answers = list(table)
    lines = [f"{title}: label \\ verdict " + "".join(f"{a:>7}" for a in answers)]
    for truth in answers:
        lines.append(f"  {truth:<21}" + "".join(f"{table[truth][a]:>7}" for a in answers))
    return lines


def _training_info(progress, elapsed: float) -> str:
    """The training bar's note: recent loss and pictures per second."""
    info = []
    if progress.loss is not None:
        info.append(f"loss {progress.loss:.3f}")
    if progress.images_per_second:
        info.append(f"{progress.images_per_second:.1f} images/s")
    return "  ".join(info)
