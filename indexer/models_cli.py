"""`indexer models list` and `indexer models fetch`: the models this machine has, and
preparing a machine once so it can index and search offline afterwards."""

from __future__ import annotations

import functools
import json
import sys

import click

from .options import device_option, json_option


def _one_line_errors(command):
    """indexer.cli's one_line_errors, looked up when the command runs (cli imports this)."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        from .cli import one_line_errors

        return one_line_errors(command)(*args, **kwargs)

    return run


def _human(size: int | None) -> str:
    if size is None:
        return "-"
    return f"{size / 1e6:.0f} MB" if size < 1e9 else f"{size / 1e9:.2f} GB"


def _configured(device):
    from .cli import settings_from
    from .model_cache import configured_models
    from .models import default_rerank_model

    settings = settings_from(device=device)
    rerank = settings.rerank_model or default_rerank_model(settings.device)
    return configured_models(settings, rerank)


def _show(models, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"models": [model.as_dict() for model in models]}, indent=2))
        return
    for model in models:
        where = model.path or "not on this machine"
        click.echo(f"{model.role:<8} {model.spec}\n         {where}  ({_human(model.size)})")


@click.group()
def models() -> None:
    """The caption, CLIP and rerank models this machine uses: which are here, and fetching
    them all at once (defaults, or what $INDEXER_CAPTION_MODEL, $INDEXER_CLIP_MODEL and
    $INDEXER_RERANK_MODEL name).

    \b
    Example:
        indexer models list
        indexer models fetch
    """


@models.command(name="list")
@device_option
@json_option()
@_one_line_errors
def list_models(device, as_json):
    """Say which of the configured models are on this machine, where and how large.

    \b
    Example:
        indexer models list
        INDEXER_CLIP_MODEL=local-dir:/models/clip indexer models list --json
    """
    from .cli import quiet_model_logs

    quiet_model_logs()
    _show(_configured(device), as_json)


@models.command()
@device_option
@json_option()
@_one_line_errors
def fetch(device, as_json):
    """Download every configured model that is not on this machine yet into its cache
    (ModelScope's for OFA, Hugging Face's for CLIP), then say where they are. Offline, or
    with no network, it stops at once with one line.

    \b
    Example:
        indexer models fetch
        HF_HOME=/data/hf MODELSCOPE_CACHE=/data/ms indexer models fetch
    """
    from .cli import quiet_model_logs
    from .model_cache import fetch_models
    from .progress import Progress, progress_bar

    quiet_model_logs()
    wanted = _configured(device)
    with progress_bar(sys.stderr.isatty() and not as_json, "fetching models") as on_progress:
        fetched = fetch_models(wanted, lambda done, total, _: on_progress(Progress(done, total)))
    _show(fetched, as_json)
