"""Progress reports: what the library sends to a progress callback, and a terminal progress
bar (rich) that the CLI hands to the library as that callback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class Progress:
    """Sent to a progress callback: `done` of `total` items (photos, pairs, files)."""

    done: int
    total: int


@contextmanager
def progress_bar(enabled: bool, label: str = "indexing") -> Iterator:
    """Yield a callback taking objects with `done` and `total`; it draws a bar when `enabled`."""
    if not enabled:
        yield lambda progress: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=True, console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=None, rate="")

        def update(progress) -> None:
            elapsed = bar.tasks[task].elapsed or 0.0
            rate = f"{progress.done / elapsed:.1f} images/s" if elapsed > 0 else ""
            bar.update(task, total=progress.total, completed=progress.done, rate=rate)

        yield update
