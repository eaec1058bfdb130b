"""Peak memory of a whole command: the resident memory of its process and all its children
(decode workers included), summed, sampled from /proc while it runs (Linux)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(child) for child in task.read_text().split()]
        except (OSError, ValueError):
            continue
    return found


def tree_rss_mb(pid: int) -> float:
    """Resident memory of `pid` and its descendants now, in MB."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += _rss_kb(current)
        todo += _children(current)
    return total / 1024


def run_measured(command: list[str], env: dict, interval: float = 0.1) -> tuple[float, float]:
    """(wall seconds, peak MB of the whole process tree) of a command that must succeed."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = 0.0
    while process.poll() is None:
        peak = max(peak, tree_rss_mb(process.pid))
        time.sleep(interval)
    seconds = time.perf_counter() - start
    out, err = process.communicate()
    if process.returncode:
        tail = err.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise RuntimeError(f"{command[2:4]} failed ({process.returncode}): {tail[0]}")
    return seconds, peak
