"""Compare a walk with the index: what is unchanged, what needs work, what has vanished.

Only size and modification time are compared here (no file is opened). Files that vanished
are candidates for deletion only when the walk covered the place they were in; the build
first lets new files claim them by content hash (a move or rename keeps its caption and
vector), and deletes the rest at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .scan import FoundFile, ScanProblem, ScanResult
from .store import IndexStore, KnownFile


@dataclass
class BuildPlan:
    """The work of one build, worked out before any file is read."""

    work: list[FoundFile] = field(default_factory=list)
    problems: list[ScanProblem] = field(default_factory=list)
    unchanged: int = 0
    known: dict[str, KnownFile] = field(default_factory=dict)
    failed_before: dict[str, tuple[int, int]] = field(default_factory=dict)
    vanished: dict[str, list[KnownFile]] = field(default_factory=dict)
    vanished_failures: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    def take_vanished(self, hash_: str) -> KnownFile | None:
        """Claim a vanished image with this content hash (it moved), or None."""
        candidates = self.vanished.get(hash_)
        return candidates.pop() if candidates else None

    def unclaimed_vanished(self) -> list[KnownFile]:
        """Vanished images no new file claimed: they were deleted."""
        return [known for group in self.vanished.values() for known in group]

    def known_hashes(self) -> set[str]:
        """Content hashes the index holds: files with these need no model."""
        return {known.hash for known in self.known.values()}

    def is_new_failure(self, path: str, size: int, mtime_ns: int) -> bool:
        """True unless this exact failure (same file facts) was already recorded."""
        return self.failed_before.get(path) != (size, mtime_ns)


def make_plan(walk: ScanResult, store: IndexStore, allow_empty: bool = False) -> BuildPlan:
    """Sort every found file into unchanged or work, and collect what vanished.

    A root found empty keeps its indexed photos unless `allow_empty`.
    """
    plan = BuildPlan(
        problems=list(walk.problems),
        known=store.known_files(),
        failed_before=store.known_failures(),
    )
    seen = set()
    for found in walk.files:
        seen.add(found.path)
        known = plan.known.get(found.path)
        if known and (known.size, known.mtime_ns) == (found.size, found.mtime_ns):
            plan.unchanged += 1
        elif not known and plan.failed_before.get(found.path) == (found.size, found.mtime_ns):
            plan.unchanged += 1  # failed before and not changed since: not retried
        else:
            plan.work.append(found)
    seen.update(problem.path for problem in walk.problems)
    if not allow_empty:
        _keep_emptied_roots(walk, plan, seen)
    for path, known in plan.known.items():
        if path not in seen and walk.covers(path):
            plan.vanished.setdefault(known.hash, []).append(known)
    plan.vanished_failures = [
        path for path in plan.failed_before if path not in seen and walk.covers(path)
    ]
    return plan


def _keep_emptied_roots(walk: ScanResult, plan: BuildPlan, seen: set[str]) -> None:
    """A root that is now empty but has indexed photos is most likely an unmounted drive or
    a network share that is down: treat it as unreadable rather than delete its photos."""
    for root in walk.roots:
        probe = ScanResult(roots=[root])
        if any(probe.covers(path) for path in seen):
            continue
        indexed = sum(probe.covers(path) for path in plan.known)
        if indexed:
            walk.incomplete_dirs.append(root)
            plan.notices.append(
                f"{root} is empty but {indexed} indexed photos were there; kept them (is a "
                "drive unmounted?); build with --allow-empty to remove them"
            )
