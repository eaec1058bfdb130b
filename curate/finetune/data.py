"""Training data: the PAIRS / LABELS CSV read as a stream, each row checked, the held-out split.

A captions CSV has `path,caption` rows, an entailment CSV `path,text,label` rows with label
yes / no / maybe; a header row naming the columns is optional (`text` may stand for
`caption`, `verdict` for `label`, so an `indexer audit` report with corrected verdicts is a
LABELS file). The CSV rules are those of `indexer audit` (curate/csvrows.py).

Nothing here holds the whole file: `survey` reads it once to check every row (bad rows
become `Problem`s with their line numbers) and count what is usable; `training_rows` then
streams the usable training rows as often as the training needs them, shuffled within a
bounded buffer, the same order for the same seed (so a resumed run sees what the
interrupted one would have seen).
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from ..csvrows import header_columns, one_spaced, open_csv, records, resolve_path, row_cells

TASKS = ("captions", "entailment")
ANSWERS = ("yes", "no", "maybe")
_HEADERS = {
    "captions": (("path",), ("caption", "text")),
    "entailment": (("path",), ("text",), ("label", "verdict")),
}
_NAMES = {"captions": ("path", "caption"), "entailment": ("path", "text", "label")}
SHUFFLE_BUFFER = 4096  # rows (paths and texts, not pictures) shuffled together


@dataclass(frozen=True)
class Row:
    """One usable CSV row: `path` absolute, `key` the path as the split sees it (relative to
    the CSV's folder), `label` yes / no / maybe for entailment, else None."""

    line: int
    path: str
    key: str
    text: str
    label: str | None = None


@dataclass(frozen=True)
class Problem:
    """A CSV row that is skipped, and why."""

    line: int
    path: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}" + (f"  {self.path}" if self.path else "")


@dataclass
class Survey:
    """What one pass over the CSV found: usable rows on each side of the split, the skipped
    rows, and the SHA-256 of the file (recorded with the model)."""

    csv_path: str
    task: str
    holdout: float
    train: int = 0
    held_out: int = 0
    problems: list[Problem] = field(default_factory=list)
    sha256: str = ""

    @property
    def skipped_lines(self) -> set[int]:
        return {problem.line for problem in self.problems}


def read_rows(csv_path: str | os.PathLike, task: str) -> Iterator[Row | Problem]:
    """Every data row of the CSV, in file order, as a Row or (bad text, label, path or
    column count) a Problem. The pictures are not opened here."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, not {task!r}")
    base = Path(csv_path).expanduser().absolute().parent
    with open_csv(csv_path) as handle:
        columns, first = None, True
        for line, cells in records(handle, str(csv_path)):
            if first:
                first, columns = False, header_columns(cells, _HEADERS[task])
                if columns:
                    continue
            yield _row(line, cells, columns, base, task)


def _row(line: int, cells: list[str], columns, base: Path, task: str) -> Row | Problem:
    values, problem = row_cells(cells, columns, _NAMES[task])
    if values is None:
        return Problem(line, "", problem)
    path, text = resolve_path(values[0], base), one_spaced(values[1])
    problems = [] if path else ["no path"]
    problems += [] if text else [f"empty {_NAMES[task][1]}"]
    label = None
    if task == "entailment":
        label = values[2].strip().lower()
        if label not in ANSWERS:
            problems.append(f"unknown label {values[2].strip()!r} (expected yes, no or maybe)")
    if problems:
        return Problem(line, path, "; ".join(problems))
    return Row(line, path, os.path.relpath(path, base), text, label)


def load_picture(path: str) -> Image.Image | str:
    """The picture at `path` as RGB, or the one-line reason it cannot be used."""
    from indexer.decode import DecodeError, decode_image

    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return "file not found"
    except IsADirectoryError:
        return "not a file"
    except OSError as error:
        return f"cannot read: {error.strerror or type(error).__name__}"
    try:
        return decode_image(data).image
    except DecodeError as error:
        return str(error)


def held_out(row: Row, fraction: float) -> bool:
    """Whether the row's picture is held out: decided by a hash of its path (relative to the
    CSV), so the same pictures are held out on every run, all rows of a picture together."""
    digest = hashlib.blake2b(row.key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < fraction


def survey(csv_path: str | os.PathLike, task: str, holdout: float) -> Survey:
    """Read the CSV once: check every row and open every picture (a missing or undecodable
    file is a Problem), count the usable rows of each side of the split."""
    found = Survey(str(Path(csv_path).expanduser().absolute()), task, holdout)
    for item in read_rows(csv_path, task):
        if isinstance(item, Row):
            picture = load_picture(item.path)
            item = Problem(item.line, item.path, picture) if isinstance(picture, str) else item
        if isinstance(item, Problem):
            found.problems.append(item)
        elif held_out(item, holdout):
            found.held_out += 1
        else:
            found.train += 1
    found.sha256 = file_sha256(csv_path)
    return found


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(Path(path).expanduser(), "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def split_rows(found: Survey, held: bool) -> Iterator[Row]:
    """The usable rows of one side of the split, in file order."""
    skipped = found.skipped_lines
    for item in read_rows(found.csv_path, found.task):
        usable = isinstance(item, Row) and item.line not in skipped
        if usable and held_out(item, found.holdout) == held:
            yield item


def training_rows(found: Survey, seed: int, skip: int = 0) -> Iterator[Row]:
    """The training rows, epoch after epoch without end, each epoch shuffled in buffers of
    SHUFFLE_BUFFER rows by `seed`; the first `skip` rows are passed over without being
    shuffled anew (a resumed run continues where the last one stopped)."""
    epoch = 0
    while found.train > 0:
        if skip >= found.train > 0:  # whole epochs are skipped without reading the file
            skip, epoch = skip - found.train, epoch + 1
            continue
        for row in _shuffled_epoch(found, seed, epoch):
            if skip:
                skip -= 1
                continue
            yield row
        epoch += 1


def _shuffled_epoch(found: Survey, seed: int, epoch: int) -> Iterator[Row]:
    buffer: list[Row] = []
    chunk = 0
    for row in split_rows(found, held=False):
        buffer.append(row)
        if len(buffer) == SHUFFLE_BUFFER:
            yield from _shuffled(buffer, seed, epoch, chunk)
            buffer, chunk = [], chunk + 1
    yield from _shuffled(buffer, seed, epoch, chunk)


def _shuffled(rows: list[Row], seed: int, epoch: int, chunk: int) -> list[Row]:
    random.Random(f"{seed}:{epoch}:{chunk}").shuffle(rows)
    return rows
