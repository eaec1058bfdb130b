"""The `indexer` command: a thin layer over the library. Heavy imports wait until a command runs."""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import sys

import click

# Before torch loads: OpenMP threads that spin while they wait take the cores the decode
# workers need; measured on 2 cores under load, a caption took 0.84 s passive against
# 3.7-7.0 s with the default (python -m bench, indexer/ofa_speed/ notes).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .config import CAPTION_MODES
from .errors import IndexerError
from .options import (
    device_option,
    index_option,
    json_option,
    trust_remote_code_option,
)


def fail(message: str, code: int = 1) -> None:
    """Print one line to stderr and exit with `code`."""
    click.echo(f"indexer: {message}", err=True)
    sys.exit(code)


def one_line_errors(command):
    """Turn the library's exceptions into a one-line message and a non-zero exit status."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (IndexerError, ValueError) as error:
            fail(str(error))
        except sqlite3.DatabaseError as error:  # damage found after the index opened
            index_dir = click.get_current_context().params.get("index_dir")
            from .store import DB_NAME

            db_file = settings_from(index_dir=index_dir).index_dir / DB_NAME
            fail(f"index database {db_file} cannot be read ({error}); move it away and run "
                 "`indexer build` again to rebuild the index")  # fmt: skip
        except KeyboardInterrupt:
            fail("interrupted; work committed so far is kept", 130)

    return wrapper


def settings_from(**flags):
    """Settings from defaults, INDEXER_* variables and the flags that were given."""
    from .config import load_settings

    return load_settings(flags)


def quiet_model_logs() -> None:
    """ModelScope and transformers log at INFO by default, and the hub clients warn at each
    retry; a CLI user wants only problems, and the one line that says what failed."""
    import logging
    import os
    import warnings

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("MODELSCOPE_LOG_LEVEL", str(logging.ERROR))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("modelscope", "modelscope_hub", "huggingface_hub", "transformers", "open_clip",
                 "fairseq"):  # fmt: skip
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)


COMMAND_PLUGINS = "photo_indexer.commands"


class PluginGroup(click.Group):
    """A group that also offers the commands other packages register under the entry-point
    group `photo_indexer.commands` (search and ui do), so this package never imports them."""

    def _plugins(self) -> dict:
        from importlib.metadata import entry_points

        return {ep.name: ep for ep in entry_points(group=COMMAND_PLUGINS)}

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self._plugins()))

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is None and name in self._plugins():
            command = self._plugins()[name].load()
        return command


@click.group(cls=PluginGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="photo-indexer")
def main() -> None:
    """Index a folder of photos (OFA captions + CLIP vectors) and search it in plain language.

    \b
    Example:
        indexer build ~/Pictures
        indexer status
    """


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str))
@index_option
@click.option("--caption-model", help="ModelScope OFA caption model id or local folder "
              "[$INDEXER_CAPTION_MODEL].")  # fmt: skip
@click.option("--clip-model", help="open_clip spec: hf-hub:ORG/REPO, local-dir:/path, a folder, "
              "or ARCH@PRETRAINED [$INDEXER_CLIP_MODEL].")  # fmt: skip
@device_option
@click.option("--batch-size", type=click.IntRange(min=1),
              help="Images per model batch [$INDEXER_BATCH_SIZE; default 8].")  # fmt: skip
@click.option("--rebuild", is_flag=True,
              help="Re-index everything when the index has another CLIP model.")  # fmt: skip
@click.option("--allow-empty", is_flag=True,
              help="Let a folder found empty remove its photos from the index (by default an "
              "empty folder is taken for an unmounted drive).")  # fmt: skip
@trust_remote_code_option
@click.option("--fast", is_flag=True, default=None,
              help="Faster captions from reduced precision (bfloat16, channels-last); they "
              "may differ from the default's [$INDEXER_PROFILE=fast].")  # fmt: skip
@click.option("--captions", type=click.Choice(CAPTION_MODES),
              help="later: make every photo searchable by CLIP first, then caption them "
              "(stop any time, the next build goes on); now: caption each photo as it is "
              "indexed; never: no captions [$INDEXER_CAPTIONS; default later].")  # fmt: skip
@click.option("--ocr/--no-ocr", default=None,
              help="Read the text in photos (signs, receipts, slides, screenshots) so search "
              "finds it [$INDEXER_OCR=0 turns it off; default on].")  # fmt: skip
@json_option("Print the run's summary as JSON.")
@one_line_errors
def build(paths, index_dir, caption_model, clip_model, device, batch_size, rebuild, allow_empty,
          trust_remote_code, fast, captions, ocr, as_json):  # fmt: skip
    """Index the photos under PATHS: new and changed files are captioned and embedded,
    moved files keep their data, deleted files leave the index.

    \b
    Example:
        indexer build ~/Pictures /mnt/photos --batch-size 16
        indexer build ~/Pictures --captions now
        indexer build ~/Pictures --no-ocr
    """
    from .build import build_index
    from .models import models_from_settings
    from .ocr import DEFAULT_TEXT_READER
    from .progress import progress_bar

    settings = settings_from(
        index_dir=index_dir, caption_model=caption_model, clip_model=clip_model,
        device=device, batch_size=batch_size, trust_remote_code=trust_remote_code,
        profile="fast" if fast else None, captions=captions, ocr=ocr,
    )  # fmt: skip
    quiet_model_logs()
    with progress_bar(enabled=sys.stderr.isatty() and not as_json) as on_progress:
        report = build_index(
            paths, settings.index_dir, models_from_settings(settings),
            batch_size=settings.batch_size, rebuild=rebuild, on_progress=on_progress,
            allow_empty=allow_empty, captions=settings.captions,
            read_text=DEFAULT_TEXT_READER if settings.ocr else None,
        )  # fmt: skip
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
        return
    for notice in report.notices:
        click.echo(f"note: {notice}", err=True)
    click.echo(
        f"new {report.new}, updated {report.updated}, moved {report.moved}, "
        f"removed {report.removed}, unchanged {report.unchanged}, failed {report.failed}"
        f"; captioned {report.captioned}, waiting for captions {report.captions_pending}"
        f"; text read in {report.text_read}"
    )
    for path, reason in report.failures[:5]:
        click.echo(f"  failed: {path}: {reason}")
    if len(report.failures) > 5:
        click.echo(f"  ... and {len(report.failures) - 5} more (see `indexer status`)")


@main.command()
@index_option
@json_option()
@one_line_errors
def status(index_dir, as_json):
    """Show what is in the index: where it is, counts, models and failed files.

    \b
    Example:
        indexer status --json
    """
    from .status import index_status

    report = index_status(settings_from(index_dir=index_dir).index_dir)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    models = report["models"]
    lines = [
        f"index:    {report['index']}" + ("" if report["exists"] else " (not built yet)"),
        f"indexed:  {report['indexed']} (searchable by CLIP)",
        f"captioned: {report['passes']['captions']['done']} of {report['indexed']}"
        + (
            f" ({report['passes']['captions']['pending']} waiting; `indexer build` goes on)"
            if report["passes"]["captions"]["pending"]
            else ""
        ),
        f"text read: {report['passes']['text']['done']} of {report['indexed']}"
        f" ({report['passes']['text']['with_text']} with text)",
        f"vectors:  {report['vectors']}",
        f"failed:   {report['failed']}",
        f"captions: {models['caption_model'] or '-'}",
        f"clip:     {models['clip_model'] or '-'} ({models['vector_dim'] or '?'} dimensions)",
    ]
    if report["notice"]:
        lines.append(f"note:     {report['notice']}")
    lines += [f"  failed: {row['path']}: {row['reason']}" for row in report["failures"][:10]]
    click.echo("\n".join(lines))


def _add_builtin_groups() -> None:
    from .models_cli import models

    main.add_command(models)


_add_builtin_groups()

if __name__ == "__main__":
    main()
