"""The text pass: read the text in the photos that no build has read with this reader yet.

It runs after the CLIP pass and before the captions pass (text is read in well under a
second a photo; a caption takes seconds), over every photo without this reader's "done"
marker: new photos, and all photos of an index built before the indexer read text, which
gain their text without being captioned or embedded again. Reading happens in the decode
workers, with their time and memory budget: a picture that makes the reader fail or run out
of time is marked read with no text (one failed row, noted in the build's notices) and is
not tried again by the same reader; a reader that cannot load in the workers stops the pass
with a notice and leaves the photos for a later build. Each batch is committed; copies of a
content are read once. A file changed since its CLIP pass is left for the next build to
index anew.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .decode import DecodedImage
from .decode_pool import DecodeJob, DecodePool
from .ocr import (
    DEFAULT_TEXT_READER,
    DETECT_SIDE,
    READER_UNAVAILABLE,
    TextReaderUnavailable,
    lines_json,
    reader_factory,
)
from .pending import decode_rows, next_batch
from .progress import Progress
from .store import IndexStore

PHASE = "text"


@dataclass
class TextPassReport:
    """What a text pass did: photos read (with and without text), photos whose reading
    failed (marked read, no text: (path, reason)), photos skipped (changed or unreadable:
    they stay unread)."""

    read: int = 0
    with_text: int = 0
    skipped: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)


def reader_name(spec: str = DEFAULT_TEXT_READER) -> str:
    """The name the reader `spec` ("module:class") marks photos with: its class's
    `model_name()`, found without loading the model. Raises TextReaderUnavailable."""
    return reader_factory(spec).model_name()


def read_pending_text(
    store: IndexStore,
    pool: DecodePool,
    spec: str = DEFAULT_TEXT_READER,
    batch_size: int = 16,
    on_progress: Callable[[Progress], None] | None = None,
) -> TextPassReport:
    """Read the text of every photo of `store` not read by the reader `spec` yet,
    `batch_size` contents at a time (the next batch is read while this one is stored)."""
    on_progress = on_progress or (lambda progress: None)
    name, report = reader_name(spec), TextPassReport()
    store.adopt_text(name)  # copies of contents read before need no reading
    total = store.count_text_pending(name)
    if total == 0:
        return report
    on_progress(Progress(0, total, phase=PHASE))
    seen: set[str] = set()

    def fetch(after: int, limit: int) -> list[dict]:
        return store.pending_text(name, after, limit)

    def job(key: int, path: str) -> DecodeJob:
        return DecodeJob(key, path, min_side=DETECT_SIDE, read_text=spec)

    rows, after = next_batch(fetch, 0, batch_size, seen)
    with ThreadPoolExecutor(1, thread_name_prefix="text-read") as reader:
        pending = reader.submit(decode_rows, rows, pool, job) if rows else None
        while pending is not None:
            outcomes = pending.result()
            rows, after = next_batch(fetch, after, batch_size, seen)
            pending = reader.submit(decode_rows, rows, pool, job) if rows else None
            store.set_text(_texts(outcomes, report), name)
            on_progress(Progress(report.read + report.skipped, total, phase=PHASE))
    return report


def _texts(outcomes, report: TextPassReport) -> list[tuple[str, str, str]]:
    """(hash, text, lines as JSON) to store for each outcome; counts them in `report`."""
    texts = []
    for row, outcome in outcomes:
        if outcome is None:
            report.skipped += 1
            continue
        if isinstance(outcome, DecodedImage) and outcome.text_lines is not None:
            lines = outcome.text_lines
        else:
            reason = outcome if isinstance(outcome, str) else outcome.text_error
            if reason and reason.startswith(READER_UNAVAILABLE):  # not this photo's fault
                raise TextReaderUnavailable(reason[len(READER_UNAVAILABLE) :])
            report.failures.append((row["path"], reason or "text reader gave nothing"))
            lines = []
        texts.append((row["hash"], "\n".join(line.text for line in lines), lines_json(lines)))
        report.read += 1
        report.with_text += bool(lines)
    return texts


def text_pass(store, pool, batch_size, on_progress, notices: list[str], spec: str) -> int:
    """The build's text pass (see the module docstring); its troubles become `notices`
    (a reader that cannot be had skips the pass). Returns how many photos were read."""
    try:
        done = read_pending_text(store, pool, spec, max(batch_size, 16), on_progress)
    except TextReaderUnavailable as error:
        notices.append(f"text in photos was not read: {error}")
        return 0
    if done.failures:
        path, reason = done.failures[0]
        more = f" (and {len(done.failures) - 1} more)" if len(done.failures) > 1 else ""
        notices.append(f"text could not be read in {path}: {reason}{more}")
    return done.read
