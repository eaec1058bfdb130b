"""Small measuring helpers shared by the benchmarks."""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable


def timed(action: Callable[[], object]) -> float:
    """Seconds `action` took."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def latencies_ms(action: Callable[[int], object], runs: int, warmup: int = 2) -> list[float]:
    """Milliseconds of each of `runs` calls `action(i)`, after `warmup` calls."""
    for i in range(warmup):
        action(i)
    return [1000 * timed(lambda i=i: action(i)) for i in range(runs)]


def percentiles(values: list[float]) -> dict[str, float]:
    """p50 / p90 / p99 of a list of numbers."""
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]

    return {"p50": statistics.median(ordered), "p90": at(0.9), "p99": at(0.99)}


def peak_memory_mb() -> dict[str, float]:
    """Peak resident memory of this process and of its (waited-for) children, in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"process_mb": round(own, 1), "largest_child_mb": round(children, 1)}


def table(title: str, rows: list[tuple]) -> str:
    """A plain-text table: the first row is the header."""
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = [title, "-" * len(title)]
    for n, row in enumerate(rows):
        lines.append(
            "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
        )
        if n == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)
