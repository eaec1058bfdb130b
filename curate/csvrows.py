"""Reading the CSV files the curation commands take (`indexer audit`, `indexer finetune`).

One set of rules for all of them: UTF-8 (a byte-order mark is fine), blank lines skipped,
an optional header row that names the columns (other columns are then ignored), without a
header exactly the expected columns in the expected order, line numbers as a text editor
counts them, and relative paths taken from the CSV's own folder so that a CSV can travel
with its pictures. Rows stream: nothing here holds a whole file.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TextIO

from indexer.errors import IndexerError


def open_csv(csv_path: str | os.PathLike) -> TextIO:
    """The CSV file opened for reading as text; IndexerError with one line if it cannot be."""
    csv_path = Path(csv_path).expanduser()
    try:
        return open(csv_path, encoding="utf-8-sig", newline="")  # noqa: SIM115  (caller closes)
    except FileNotFoundError:
        raise IndexerError(f"no such file: {csv_path}") from None
    except IsADirectoryError:
        raise IndexerError(f"{csv_path} is a folder, not a CSV file") from None
    except OSError as error:
        raise IndexerError(f"cannot read {csv_path}: {error.strerror or error}") from None


def records(lines: Iterable[str], name: str = "the CSV") -> Iterator[tuple[int, list[str]]]:
    """`(line number, cells)` for each non-blank row of CSV text given line by line. A row
    the csv module cannot parse, or text that is not UTF-8, raises IndexerError naming
    `name` and the line."""
    reader = csv.reader(lines)
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise IndexerError(f"{name} line {reader.line_num}: {error}") from None
        except UnicodeDecodeError:
            raise IndexerError(f"{name} is not UTF-8 text (line {reader.line_num + 1}); "
                               "save it as UTF-8 CSV") from None  # fmt: skip
        if cells:
            yield reader.line_num, cells


def header_columns(
    cells: Sequence[str], columns: Sequence[Sequence[str]]
) -> tuple[int, ...] | None:
    """If `cells` is a header naming every wanted column (each given as its accepted names,
    e.g. `("label", "verdict")`), the index of each; else None (the row is data)."""
    names = [cell.strip().lower() for cell in cells]
    found = []
    for aliases in columns:
        at = next((names.index(alias) for alias in aliases if alias in names), None)
        if at is None:
            return None
        found.append(at)
    return tuple(found)


def row_cells(
    cells: Sequence[str], columns: tuple[int, ...] | None, expected: Sequence[str]
) -> tuple[list[str] | None, str | None]:
    """The wanted cells of one data row, in `expected` order (missing ones empty), or None
    and the problem when a row without a header has the wrong number of columns."""
    if columns is None:
        if len(cells) != len(expected):
            return None, (f"expected {len(expected)} columns ({','.join(expected)}), "
                          f"found {len(cells)}")  # fmt: skip
        columns = tuple(range(len(expected)))
    return [cells[at] if at < len(cells) else "" for at in columns], None


def resolve_path(raw: str, base: str | os.PathLike) -> str:
    """A path cell as an absolute, normalised path: `~` expanded, relative to `base`.
    Empty for an empty cell."""
    raw = raw.strip()
    return os.path.normpath(Path(base) / os.path.expanduser(raw)) if raw else ""


def one_spaced(text: str) -> str:
    """Text with runs of white space (new lines included) made single spaces, trimmed."""
    return " ".join(text.split())
