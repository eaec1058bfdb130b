"""`indexer duplicates`, `audit`, `tag` and `export`: library curation commands, registered
as commands of the `indexer` CLI through entry points. Each is a thin layer over a library
function (curate.duplicates, curate.audit, curate.tags, curate.export) that the page
calls too."""

from __future__ import annotations

import json
import sys

import click

from indexer.cli import one_line_errors, quiet_model_logs, settings_from
from indexer.options import (
    device_option,
    index_option,
    json_option,
    rerank_model_option,
    trust_remote_code_option,
)


def _bar(as_json: bool, label: str):
    from indexer.progress import progress_bar

    return progress_bar(enabled=sys.stderr.isatty() and not as_json, label=label)


def _open_store(settings):
    from indexer.store import IndexStore

    return IndexStore.open(settings.index_dir)


def _notes(notices) -> None:
    for notice in notices:
        click.echo(f"note: {notice}", err=True)


@click.command()
@index_option
@json_option()
@one_line_errors
def duplicates(index_dir, as_json):
    """Find exact duplicates (same bytes), near-duplicates (resized, recompressed, lightly
    edited: CLIP and a perceptual hash agree) and bursts (similar shots taken seconds apart),
    each group with a suggested keeper: largest resolution, then oldest. Nothing is changed.

    \b
    Example:
        indexer duplicates
        indexer duplicates --json > groups.json
    """
    from .duplicates import find_duplicates

    store = _open_store(settings_from(index_dir=index_dir))
    try:
        with _bar(as_json, "comparing") as on_progress:
            report = find_duplicates(store, on_progress=on_progress)
    finally:
        store.close()
    _notes(report.notices)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
        return
    for group in report.groups:
        for n, photo in enumerate(group.members):
            head = f"{group.kind:<6} keep" if n == 0 else "       also"
            click.echo(f"{head} {photo.path}  ({photo.width}x{photo.height}, {photo.date})")
    counts = ", ".join(f"{n} {kind}" for kind, n in report.counts().items())
    found = f"{len(report.groups)} groups ({counts})" if report.groups else "no groups"
    click.echo(f"{found} among {report.photos} photos")


@click.command()
@click.option("--labels", required=True, metavar="A,B,...",
              help="Comma-separated labels, e.g. \"beach,city,food\".")  # fmt: skip
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True), default=0.3,
              show_default=True,
              help="Lowest score (softmax over the labels) that tags.")  # fmt: skip
@index_option
@device_option
@json_option()
@one_line_errors
def tag(labels, threshold, index_dir, device, as_json):
    """Tag every photo with the LABELS that CLIP finds in it (zero-shot), replacing earlier
    tags of those labels. Tags filter searches: `indexer search QUERY --tag LABEL`.

    \b
    Example:
        indexer tag --labels "beach,mountain,city,food,people,document,screenshot"
        indexer tag --labels "cat,dog,other" --threshold 0.5
        indexer search "sunset" --tag beach
    """
    from indexer.embed import ClipEmbedder
    from indexer.errors import IndexerError

    from .tags import parse_labels, tag_photos

    labels = parse_labels(labels)
    settings = settings_from(index_dir=index_dir, device=device)
    store = _open_store(settings)
    try:
        clip_model = store.models()["clip_model"]
        if not clip_model or store.count_images() == 0:
            raise IndexerError(f"index {settings.index_dir} is empty; run `indexer build` first")
        quiet_model_logs()
        embedder = ClipEmbedder(clip_model, settings.device)
        with _bar(as_json, "tagging") as on_progress:
            report = tag_photos(store, embedder, labels, threshold, on_progress=on_progress)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
        return
    counts = ", ".join(f"{label} {n}" for label, n in report.counts.items())
    click.echo(f"tagged {report.tagged} of {report.photos} photos: {counts}")


@click.command()
@click.argument("pairs", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write the report to this .csv or .json file.")  # fmt: skip
@index_option
@rerank_model_option
@device_option
@trust_remote_code_option
@json_option("Print the report as JSON.")
@one_line_errors
def audit(pairs, output, index_dir, rerank_model, device, trust_remote_code, as_json):
    """Check that each picture in PAIRS (a CSV of path,text rows: product descriptions, alt
    texts, captions) supports its text, with OFA visual entailment: verdict, P(yes/no/maybe)
    and the stored caption, worst mismatches first. Rows that cannot be judged (missing
    file, empty text) are listed first, with the reason.

    \b
    Example:
        indexer audit listings.csv
        indexer audit listings.csv -o report.csv
        indexer audit alt-texts.csv -o report.json --device cuda
    """
    from indexer.store import DB_NAME
    from search.engine import make_reranker

    from .audit import audit_pairs, read_pairs, write_report

    if output and not output.lower().endswith((".csv", ".json")):
        raise ValueError(f"report must be a .csv or .json file, not {output!r}")
    rows = read_pairs(pairs)
    settings = settings_from(index_dir=index_dir, rerank_model=rerank_model, device=device,
                             trust_remote_code=trust_remote_code)  # fmt: skip
    store = _open_store(settings) if (settings.index_dir / DB_NAME).exists() else None
    try:
        quiet_model_logs()
        reranker = make_reranker(settings)
        with _bar(as_json, "judging") as on_progress:
            report = audit_pairs(rows, reranker, store, on_progress)
        written = write_report(report, output, store, protect=[pairs]) if output else None
    finally:
        if store is not None:
            store.close()
    _notes(report.notices)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    elif not written:
        _print_audit(report)
    counts = report.summary()
    summary = (f"{counts['rows']} rows: {counts['yes']} yes, {counts['no']} no, "
               f"{counts['maybe']} maybe, {counts['errors']} errors")  # fmt: skip
    if written:  # beside JSON on stdout, this line goes to stderr
        click.echo(f"wrote {written}: {summary}", err=as_json)
    elif not as_json:
        click.echo(summary)


def _print_audit(report) -> None:
    for row in report.rows:
        if row.error:
            click.echo(f"error  line {row.line}: {row.error}  {row.path or '-'}")
            continue
        click.echo(f"{row.verdict:<5}  line {row.line}: P(yes) {row.p_yes:.2f}  "
                   f"P(no) {row.p_no:.2f}  P(maybe) {row.p_maybe:.2f}  {row.path}")  # fmt: skip
        click.echo(f"       text:    {row.text}")
        caption = row.caption if row.caption is not None else "(not in the index)"
        click.echo(f"       caption: {caption}")


@click.command()
@click.argument("query", required=False)
@click.option("--tag", "tags", multiple=True, help="Photos with this tag (repeatable: all).")
@click.option("--duplicates", "dups", is_flag=True,
              help="Every member of every exact or near duplicate group.")  # fmt: skip
@click.option("--to", "to_dir", type=click.Path(file_okay=False),
              help="Copy or link the photos into this folder (created if missing).")  # fmt: skip
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False),
              help="Write the selection to this CSV file.")  # fmt: skip
@click.option("--mode", type=click.Choice(["copy", "hardlink", "symlink"]), default="copy",
              show_default=True, help="How files get into the --to folder.")  # fmt: skip
@click.option("-k", "k", type=click.IntRange(min=1), default=10, show_default=True,
              help="Number of search results for QUERY.")  # fmt: skip
@click.option(
    "--rerank/--no-rerank",
    default=True,
    show_default=True,
    help="Judge QUERY's hits with OFA visual entailment, as `indexer search` does.",
)
@rerank_model_option
@device_option
@trust_remote_code_option
@index_option
@json_option("Print what was done as JSON.")
@one_line_errors
def export(query, tags, dups, to_dir, csv_file, mode, k, rerank, rerank_model, device,
           trust_remote_code, index_dir, as_json):  # fmt: skip
    """Copy or link the photos that QUERY finds (optionally only those with --tag), that
    carry --tag, or that are --duplicates, into a folder (--to) and/or list them in a CSV
    (--csv). Originals are never moved, deleted or overwritten; a name already taken in the
    folder gets a -1, -2, ... suffix.

    \b
    Example:
        indexer export "birthday cake" --to ~/Desktop/cakes
        indexer export --tag beach --tag people --csv beach-people.csv
        indexer export --duplicates --to ~/review --mode symlink --csv ~/review/groups.csv
    """
    from pathlib import Path

    from .export import check_output_path, export_files, prepare_target, write_selection_csv

    if dups and (query or tags):
        raise ValueError("--duplicates cannot be combined with QUERY or --tag")
    if not (dups or query or tags):
        raise ValueError("say what to export: QUERY, --tag LABEL or --duplicates")
    if not (to_dir or csv_file):
        raise ValueError("say where to: --to FOLDER and/or --csv FILE")
    settings = settings_from(index_dir=index_dir, rerank_model=rerank_model, device=device,
                             trust_remote_code=trust_remote_code)  # fmt: skip
    store, written = _open_store(settings), None
    try:
        if to_dir:  # first: the CSV may go into it
            to_dir = str(prepare_target(to_dir))
        if csv_file:  # fail before copying anything
            check_output_path(Path(csv_file).expanduser().absolute(), store)
        selection = _select(settings, store, query, tags, dups, k, rerank, as_json)
        with _bar(as_json, "exporting") as on_progress:
            result = (export_files(selection, to_dir, mode, store, on_progress) if to_dir
                      else None)  # fmt: skip
        if csv_file:
            written = write_selection_csv(selection, csv_file, store, result)
    finally:
        store.close()
    _report_export(selection, result, written and str(written), to_dir, mode, as_json)


def _select(settings, store, query, tags, dups, k, rerank, as_json):
    from .export import select_by_query, select_by_tags, select_duplicates

    if dups:
        with _bar(as_json, "comparing") as on_progress:
            return select_duplicates(store, on_progress=on_progress)
    if not query:
        return select_by_tags(store, tags)
    from search.engine import make_engine
    from search.filters import Filters

    quiet_model_logs()
    engine = make_engine(settings, rerank)
    try:
        return select_by_query(engine, query, k, rerank, Filters(tags=tuple(tags)))
    finally:
        engine.close()


def _report_export(selection, result, csv_written, to_dir, mode, as_json) -> None:
    from .export import ExportResult

    result = result or ExportResult(len(selection.rows), notices=list(selection.notices))
    result.csv = csv_written
    _notes(result.notices)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
    else:
        if to_dir:
            click.echo(f"exported {len(result.exported)} of {result.selected} photos to "
                       f"{to_dir} ({mode})")  # fmt: skip
        if csv_written:
            click.echo(f"wrote {result.selected} rows to {csv_written}")
    for path, reason in result.skipped:
        click.echo(f"skipped: {path}: {reason}", err=True)
    if result.skipped:
        sys.exit(1)
