"""Image-text consistency audit: does each picture support the text written for it?

Input: a CSV of `path,text` rows (a product description, an alt text, a caption someone
wrote). A header row naming `path` and `text` columns is optional; with one, other columns
are ignored. Relative paths are taken from the CSV's own folder, so a CSV can travel with
its pictures.

Each readable pair goes through OFA visual entailment (a `search.rerank.Reranker`): the
verdict (yes / no / maybe) and all three probabilities, beside the stored OFA caption of
the picture (found by path, else by identical content under another path). A picture that
is not in the index is still judged; its caption is left empty.

The report keeps every row: rows that could not be judged (missing file, empty text, an
undecodable picture, a malformed line, or a text in a language the judge does not read:
"not judged: language: ...", see search.language) come first with an `error`, in file
order, since each needs a person before anything is published; then the judged rows,
worst mismatch first: highest P(no), then lowest P(yes).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from indexer.decode import DecodeError, content_hash, decode_image
from indexer.errors import IndexerError
from indexer.progress import Progress
from indexer.store import IndexStore
from search.language import unreadable
from search.rerank import VERDICTS, Reranker

from .csvrows import header_columns, one_spaced, records, resolve_path, row_cells
from .export import check_output_path, csv_cell, write_atomically

_COLUMNS = (("path",), ("text",))
REPORT_COLUMNS = ("line", "path", "text", "verdict", "p_yes", "p_no", "p_maybe", "caption",
                  "indexed", "error")  # fmt: skip
_BATCH = 16


@dataclass
class AuditRow:
    """One CSV row and its judgement. `line` is its line number in the CSV; `caption` is
    the stored OFA caption (None when the picture is not indexed); `error` says why a row
    could not be judged (then the judgement fields are None)."""

    line: int
    path: str
    text: str
    verdict: str | None = None
    p_yes: float | None = None
    p_no: float | None = None
    p_maybe: float | None = None
    caption: str | None = None
    indexed: bool = False
    error: str | None = None


@dataclass
class AuditReport:
    """Every row, in report order (see the module docstring), and the model that judged."""

    rows: list[AuditRow]
    model: str
    notices: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        """Counts: rows, each verdict, and errors."""
        counts = {"rows": len(self.rows)}
        counts.update({v: sum(row.verdict == v for row in self.rows) for v in VERDICTS})
        counts["errors"] = sum(row.error is not None for row in self.rows)
        return counts

    def as_dict(self) -> dict:
        """`{"model", "summary", "rows": [...]}` as the JSON report holds it."""
        return {"model": self.model, "summary": self.summary(),
                "rows": [asdict(row) for row in self.rows]}  # fmt: skip


def read_pairs(csv_path: str | os.PathLike) -> list[AuditRow]:
    """The rows of a `path,text` CSV, unjudged. Malformed rows come back with `error` set;
    a file that cannot be read as CSV text at all raises IndexerError."""
    csv_path = Path(csv_path).expanduser()
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise IndexerError(f"no such file: {csv_path}") from None
    except UnicodeDecodeError:
        raise IndexerError(f"{csv_path} is not UTF-8 text; save it as UTF-8 CSV") from None
    except OSError as error:
        raise IndexerError(f"cannot read {csv_path}: {error.strerror or error}") from None
    return parse_pairs(text, csv_path.absolute().parent, str(csv_path))


def parse_pairs(text: str, base: str | os.PathLike, name: str = "the CSV") -> list[AuditRow]:
    """The rows of `path,text` CSV text (an upload, say), relative paths taken from `base`;
    as `read_pairs`. `name` names the source in errors."""
    lines = io.StringIO(text.removeprefix("\ufeff"), newline="")
    rows = list(records(lines, name))
    columns = header_columns(rows[0][1], _COLUMNS) if rows else None
    if columns:
        rows = rows[1:]
    return [_pair(line, cells, columns, base) for line, cells in rows]


def _pair(line: int, cells: list[str], columns: tuple[int, ...] | None, base) -> AuditRow:
    values, problem = row_cells(cells, columns, ("path", "text"))
    if values is None:  # the raw row goes in `text`, to be found again
        return AuditRow(line, "", ",".join(cells), error=problem)
    path, text = resolve_path(values[0], base), one_spaced(values[1])
    problems = [] if path else ["no path"]
    problems += [] if text else ["empty text"]
    return AuditRow(line, path, text, error="; ".join(problems) or None)


def audit_pairs(
    rows: Sequence[AuditRow],
    reranker: Reranker,
    store: IndexStore | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    only_indexed: bool = False,
) -> AuditReport:
    """Judge every row that has no error yet (a missing or undecodable file becomes one),
    and return them all in report order. `store` supplies the stored captions; without it
    captions are left empty. With `only_indexed` (a server, say, that must read nothing but
    the index's photos), a path that is not an indexed photo of `store` is not opened: its
    row gets the error "not in the index"."""
    if only_indexed and store is None:
        raise ValueError("only_indexed needs the index's store")
    report = on_progress or (lambda progress: None)
    rows = list(rows)
    report(Progress(0, len(rows)))
    for start in range(0, len(rows), _BATCH):
        _judge_batch(rows[start : start + _BATCH], reranker, store, only_indexed)
        report(Progress(min(start + _BATCH, len(rows)), len(rows)))
    notices = [] if store else ["no index: stored captions are left empty"]
    if getattr(reranker, "notice", None):
        notices.append(reranker.notice)
    return AuditReport(sort_report(rows), reranker.name, notices)


def audit_csv(
    csv_path: str | os.PathLike,
    reranker: Reranker,
    store: IndexStore | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> AuditReport:
    """`read_pairs` then `audit_pairs`."""
    return audit_pairs(read_pairs(csv_path), reranker, store, on_progress)


def sort_report(rows: Sequence[AuditRow]) -> list[AuditRow]:
    """Rows with errors first (file order), then judged rows by highest P(no), lowest P(yes)."""
    failed = sorted((row for row in rows if row.error), key=lambda row: row.line)
    judged = [row for row in rows if not row.error and row.verdict is not None]
    judged.sort(key=lambda row: (-row.p_no, row.p_yes, row.line))
    return failed + judged


def _judge_batch(
    rows: list[AuditRow], reranker: Reranker, store: IndexStore | None, only_indexed: bool
) -> None:
    by_text: dict[str, list[tuple[AuditRow, object]]] = {}
    for row in rows:
        if row.path and only_indexed and not _indexed(row.path, store):
            _fail(row, "not in the index")
        elif row.path:  # even rows with empty text get their caption and file checked
            picture = _load(row, store)
            if picture is not None and not row.error:
                by_text.setdefault(row.text, []).append((row, picture))
    languages = getattr(reranker, "languages", ("en",))
    for text, items in by_text.items():  # one reranker call per distinct text
        why_not = unreadable(text, languages) if text else None
        if why_not:  # its verdict would be made up (search.language)
            for row, _ in items:
                _fail(row, f"not judged: language: {why_not}")
            continue
        judgements = reranker.judge([picture for _, picture in items], text)
        for (row, _), judgement in zip(items, judgements, strict=True):
            row.verdict, row.p_yes = judgement.verdict, float(judgement.p_yes)
            row.p_no, row.p_maybe = float(judgement.p_no), float(judgement.p_maybe)


def _load(row: AuditRow, store: IndexStore | None):
    """The row's picture (None if unreadable, with the reason added to `error`); fills in
    the stored caption."""
    try:
        with open(row.path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return _fail(row, "file not found")
    except IsADirectoryError:
        return _fail(row, "not a file")
    except OSError as error:
        return _fail(row, f"cannot read: {error.strerror or type(error).__name__}")
    if store is not None:
        _fill_caption(row, store, data)
    try:
        return decode_image(data).image
    except DecodeError as error:
        return _fail(row, str(error))


def _indexed(path: str, store: IndexStore) -> bool:
    return store.image_by_path(path) is not None


def _fail(row: AuditRow, reason: str) -> None:
    row.error = f"{reason}; {row.error}" if row.error else reason


def _fill_caption(row: AuditRow, store: IndexStore, data: bytes) -> None:
    found = store.image_by_path(row.path)
    if found is None:  # the same picture indexed under another name still has its caption
        found = store.image_with_hash(content_hash(data))
    if found is not None:
        row.caption, row.indexed = found["caption"] or "", True


def report_csv(report: AuditReport) -> str:
    """The report as CSV text (columns: REPORT_COLUMNS; probabilities to 4 decimals,
    `indexed` as true/false)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    for row in report.rows:
        values = asdict(row)
        writer.writerow([csv_cell(values[column]) for column in REPORT_COLUMNS])
    return buffer.getvalue()


def write_report(
    report: AuditReport,
    path: str | os.PathLike,
    store: IndexStore | None = None,
    protect: Sequence[str | os.PathLike] = (),
) -> Path:
    """Write the report as CSV or JSON, chosen by the file's extension; return its path.

    Refuses (ValueError) any other extension, and any path that is an indexed photo, an
    audited picture or one of `protect` (the input CSV, say): a report never replaces them.
    """
    target = Path(path).expanduser().absolute()
    kind = target.suffix.lower()
    if kind not in (".csv", ".json"):
        raise ValueError(f"report must be a .csv or .json file, not {target.name!r}")
    check_output_path(target, store, [*protect, *(row.path for row in report.rows)])
    text = (json.dumps(report.as_dict(), indent=2, ensure_ascii=False) + "\n"
            if kind == ".json" else report_csv(report))  # fmt: skip
    write_atomically(target, text)
    return target
