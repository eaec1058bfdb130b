"""Export a selection of photos for the next tool in a workflow: copied or linked into a
folder, and/or listed in a CSV.

A selection is the photos a query finds (what `indexer search` shows, filters included),
the photos carrying some tags, or the members of duplicate groups. For duplicates every
member of every exact and near group is selected, keeper included, so each group can be
reviewed side by side; bursts are not duplicates and are left out. Copied duplicates are
named `<group>-keep-<name>` / `<group>-<name>` so a file browser shows each group
together with its suggested keeper; the CSV has `group`, `kind` and `keep` columns.

Originals are only ever read: nothing is moved, deleted or overwritten. Files are created
exclusively in the target folder (a taken name gets `-1`, `-2`, ... before its extension),
and an output file (CSV, report) may never be an indexed photo or one of the selected files.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from indexer.errors import IndexerError
from indexer.progress import Progress
from indexer.store import IndexStore
from search.engine import SearchEngine
from search.filters import Filters

from .duplicates import Thresholds, find_duplicates
from .tags import tagged_photos

MODES = ("copy", "hardlink", "symlink")
_COMMON = ["path", "caption", "width", "height", "date"]


@dataclass
class Selection:
    """Selected photos: dicts with at least `path` and `caption`, plus the selection's
    fields named in `columns` (the CSV's columns, in order). A row's optional `name` is the
    file name to export it under."""

    how: str
    rows: list[dict]
    columns: list[str]
    notices: list[str] = field(default_factory=list)


@dataclass
class ExportResult:
    """What an export did: (source, destination) per exported file, (source, reason) per
    file that could not be exported, and the CSV written, if any."""

    selected: int
    exported: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    csv: str | None = None
    notices: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """`{"selected", "exported": [{"path", "to"}], "skipped": [{"path", "reason"}],
        "csv", "notices"}`."""
        return {
            "selected": self.selected,
            "exported": [{"path": path, "to": to} for path, to in self.exported],
            "skipped": [{"path": path, "reason": reason} for path, reason in self.skipped],
            "csv": self.csv,
            "notices": self.notices,
        }


# --- selecting ---------------------------------------------------------------------------


def select_by_query(
    engine: SearchEngine,
    query: str,
    k: int = 10,
    rerank: bool = True,
    filters: Filters | None = None,
) -> Selection:
    """The photos `engine.search(query)` returns, in rank order (rank, score, verdict)."""
    result = engine.search(query, k=k, rerank=rerank, rerank_top=k, filters=filters)
    rows = [{"rank": n, "path": hit.path, "caption": hit.caption, "score": hit.score,
             "verdict": hit.verdict, "p_yes": hit.p_yes, "width": hit.width,
             "height": hit.height, "date": hit.date}
            for n, hit in enumerate(result.hits, start=1)]  # fmt: skip
    return Selection("query", rows, ["rank", *_COMMON, "score", "verdict", "p_yes"],
                     list(result.notices))  # fmt: skip


def select_by_tags(store: IndexStore, labels: Sequence[str]) -> Selection:
    """Photos carrying every one of `labels`, best score first (`score`: the lowest of
    their scores for those labels)."""
    rows = tagged_photos(store, labels)
    tags = ",".join(labels)
    for row in rows:
        row.pop("id")
        row["tags"] = tags
    return Selection("tag", rows, [*_COMMON, "tags", "score"])


def select_duplicates(
    store: IndexStore,
    thresholds: Thresholds | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> Selection:
    """Every member of every exact and near duplicate group (keepers included), group by
    group; see the module docstring."""
    report = find_duplicates(store, thresholds, on_progress)
    rows = []
    duplicates = [group for group in report.groups if group.kind != "burst"]
    for number, group in enumerate(duplicates, start=1):
        for photo in group.members:
            keep = photo is group.keep
            rows.append({"group": number, "kind": group.kind, "keep": keep, "path": photo.path,
                         "caption": photo.caption, "width": photo.width,
                         "height": photo.height, "date": photo.date,
                         "name": f"{number:03d}-{'keep-' if keep else ''}"
                                 f"{os.path.basename(photo.path)}"})  # fmt: skip
    return Selection("duplicates", rows, ["group", "kind", "keep", *_COMMON],
                     list(report.notices))  # fmt: skip


# --- exporting ---------------------------------------------------------------------------


def export_files(
    selection: Selection,
    target: str | os.PathLike,
    mode: str = "copy",
    store: IndexStore | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> ExportResult:
    """Copy (`shutil.copy2`: metadata and times kept), hard-link or symlink the selected
    files into `target` (created when missing), never overwriting anything there.

    A file that cannot be exported (gone since the build, a hard link across file systems)
    is skipped with its reason; an unusable target raises IndexerError.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    folder = prepare_target(target)
    result = ExportResult(len(selection.rows), notices=list(selection.notices))
    if store is not None and _holds_indexed_photos(store, folder):
        result.notices.append(f"{folder} holds indexed photos: the next build will index the "
                              "exported files too")  # fmt: skip
    report = on_progress or (lambda progress: None)
    report(Progress(0, len(selection.rows)))
    for done, row in enumerate(selection.rows, start=1):
        source = row["path"]
        try:
            placed = _place(source, folder, row.get("name") or os.path.basename(source), mode)
            result.exported.append((source, str(placed)))
        except OSError as error:
            result.skipped.append((source, _reason(error, mode)))
        report(Progress(done, len(selection.rows)))
    return result


def prepare_target(target: str | os.PathLike) -> Path:
    """The export folder as an absolute path, created when missing; IndexerError if it
    cannot be (a file is in the way, no permission)."""
    folder = Path(target).expanduser().absolute()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise IndexerError(f"{folder} is a file, not a folder") from None
    except OSError as error:
        raise IndexerError(f"cannot create {folder}: {error.strerror or error}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise IndexerError(f"cannot write into {folder}: permission denied")
    return folder


def _place(source: str, folder: Path, name: str, mode: str) -> Path:
    """Put `source` into `folder` under `name` or the first free variant of it."""
    if not os.path.isfile(source):
        raise FileNotFoundError(2, "No such file", source)
    stem, suffix = os.path.splitext(name)
    for n in itertools.count():
        destination = folder / (name if n == 0 else f"{stem}-{n}{suffix}")
        try:
            if mode == "copy":
                _copy_exclusive(source, destination)
            elif mode == "hardlink":
                os.link(source, destination)
            else:
                os.symlink(os.path.abspath(source), destination)
            return destination
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


def _copy_exclusive(source: str, destination: Path) -> None:
    """copy2, but the destination is created with O_EXCL: an existing file is never replaced."""
    with open(source, "rb") as reader, open(destination, "xb") as writer:
        try:
            shutil.copyfileobj(reader, writer, 1 << 20)
        except BaseException:
            writer.close()
            destination.unlink()  # our own partial file, never someone else's
            raise
    # the time matters (the date of a photo without EXIF); a file system that cannot keep
    # times or modes still gets the bytes
    with contextlib.suppress(OSError):
        shutil.copystat(source, destination)


def _reason(error: OSError, mode: str) -> str:
    if isinstance(error, FileNotFoundError):
        return "file not found (moved or deleted since the last build)"
    if mode == "hardlink" and error.errno == 18:  # EXDEV
        return "cannot hard-link across file systems; use copy or symlink"
    return f"{error.strerror or type(error).__name__}"


def _holds_indexed_photos(store: IndexStore, folder: Path) -> bool:
    return store.any_image_under(str(folder))


# --- CSV and output files ----------------------------------------------------------------


def selection_csv(selection: Selection, exported: ExportResult | None = None) -> str:
    """The selection as CSV text: its columns, plus `exported_as` after an export."""
    placed = dict(exported.exported) if exported else {}
    columns = [*selection.columns, *(["exported_as"] if exported else [])]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in selection.rows:
        values = dict(row, exported_as=placed.get(row["path"]))
        writer.writerow([csv_cell(values.get(column)) for column in columns])
    return buffer.getvalue()


def csv_cell(value) -> str:
    """A value as CSV text: empty for None, true/false, floats to 4 decimals."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def write_selection_csv(
    selection: Selection,
    path: str | os.PathLike,
    store: IndexStore | None = None,
    exported: ExportResult | None = None,
) -> Path:
    """Write `selection_csv` to `path` (never onto a photo; see `check_output_path`)."""
    target = Path(path).expanduser().absolute()
    check_output_path(target, store, [row["path"] for row in selection.rows])
    write_atomically(target, selection_csv(selection, exported))
    return target


def check_output_path(
    target: Path, store: IndexStore | None, protect: Sequence[str | os.PathLike] = ()
) -> None:
    """Raise ValueError unless `target` may be written: its folder exists, and it is not a
    folder, an indexed photo or one of `protect` (symlinks followed)."""
    if target.is_dir():
        raise ValueError(f"{target} is a folder; give a file name")
    if not target.parent.is_dir():
        raise ValueError(f"folder {target.parent} does not exist")
    real = os.path.realpath(target)
    if any(os.path.realpath(path) == real for path in protect if path):
        raise ValueError(f"refusing to write over {target}: it is one of the input files")
    if store is not None and store.any_indexed([str(target), real]):
        raise ValueError(f"refusing to write over {target}: it is an indexed photo")


def write_atomically(target: Path, text: str) -> None:
    """Write UTF-8 text to a temporary file beside `target`, then rename it into place."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, target)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise IndexerError(f"cannot write {target}: {error.strerror or error}") from None
