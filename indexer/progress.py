"""Progress reports: what the library sends to a progress callback, and a terminal progress
bar (rich) that the CLI hands to the library as that callback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class Progress:
    """Sent to a progress callback: `done` of `total` items (photos, pairs, files), and the
    `phase` of the work when it has several (a build's "captions" pass)."""

    done: int
    total: int
    phase: str | None = None


def images_per_second(progress, elapsed: float) -> str:
    """The default bar's note: the rate since the bar started."""
    return f"{progress.done / elapsed:.1f} images/s" if elapsed > 0 else ""


@contextmanager
def progress_bar(
    enabled: bool,
    label: str = "indexing",
    info: Callable[[object, float], str] = images_per_second,
) -> Iterator:
    """Yield a callback taking objects with `done` and `total`; it draws a bar when `enabled`.

    `info(progress, seconds elapsed)` is the note beside the count. A progress with a
    `phase` (e.g. "training", "measuring after") gets a bar of its own, named by it."""
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
        TextColumn("{task.fields[info]}"),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=True, console=Console(stderr=True)) as bar:
        tasks: dict[str, int] = {}

        def update(progress) -> None:
            name = getattr(progress, "phase", None) or label
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=None, info="")
            elapsed = bar.tasks[tasks[name]].elapsed or 0.0
            bar.update(tasks[name], total=progress.total, completed=progress.done,
                       info=info(progress, elapsed))  # fmt: skip

        yield update
