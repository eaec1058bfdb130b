"""Walk folders and list the image files in them, without opening any image.

The walk follows symlinks (a library often links folders in) but never enters the same
folder twice, so symlink loops end. Whatever cannot be read becomes a `ScanProblem`, and
the folders whose listing was incomplete are reported so that nothing under them is
treated as deleted.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .errors import NoSuchFolder

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".gif", ".bmp", ".dib", ".tif", ".tiff",
     ".heic", ".heif", ".avif"}
)  # fmt: skip


@dataclass(frozen=True)
class FoundFile:
    """An image file found by the walk: its path as found, and what stat said."""

    path: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class ScanProblem:
    """A path that could not be listed or stat-ed, and why."""

    path: str
    reason: str


@dataclass
class ScanResult:
    """What one walk over the roots found."""

    roots: list[str]
    files: list[FoundFile] = field(default_factory=list)
    problems: list[ScanProblem] = field(default_factory=list)
    incomplete_dirs: list[str] = field(default_factory=list)

    def covers(self, path: str) -> bool:
        """True when the walk reached the place of `path`, so its absence means deletion."""
        return _under_any(path, self.roots) and not _under_any(path, self.incomplete_dirs)


def _under_any(path: str, folders: Iterable[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip(os.sep) + os.sep) for d in folders)


def is_image_name(name: str) -> bool:
    """True for file names with an image extension (case-insensitive)."""
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def _reason(error: OSError) -> str:
    return error.strerror or type(error).__name__


def check_roots(roots: Sequence[str | os.PathLike]) -> list[str]:
    """Absolute paths of the roots; raises NoSuchFolder when one is missing or not a folder."""
    checked = []
    for root in roots:
        path = os.path.abspath(os.fsdecode(root))
        if not os.path.isdir(path):
            what = "is not a folder" if os.path.exists(path) else "does not exist"
            raise NoSuchFolder(f"{path} {what}")
        checked.append(path)
    return checked


def scan(roots: Sequence[str | os.PathLike]) -> ScanResult:
    """Walk `roots` recursively and return every image file found, with what went wrong."""
    result = ScanResult(roots=check_roots(roots))
    visited: set[tuple[int, int]] = set()
    for root in result.roots:
        _walk(root, result, visited)
    return result


def _walk(folder: str, result: ScanResult, visited: set[tuple[int, int]]) -> None:
    pending = [folder]
    while pending:
        current = pending.pop()
        try:
            info = os.stat(current)
        except OSError as error:
            result.problems.append(ScanProblem(current, f"folder unreadable: {_reason(error)}"))
            result.incomplete_dirs.append(current)
            continue
        key = (info.st_dev, info.st_ino)
        if key in visited:
            continue  # a symlink loop, or a folder linked in twice
        visited.add(key)
        try:
            with os.scandir(current) as entries:
                listed = sorted(entries, key=lambda entry: entry.name)
        except OSError as error:
            result.problems.append(ScanProblem(current, f"folder unreadable: {_reason(error)}"))
            result.incomplete_dirs.append(current)
            continue
        subfolders = []
        for entry in listed:
            kind = _classify(entry, result)
            if kind == "dir":
                subfolders.append(entry.path)
        pending.extend(reversed(subfolders))


def _classify(entry: os.DirEntry, result: ScanResult) -> str | None:
    """Record an image file in `result`; return "dir" for a folder to walk into."""
    try:
        info = entry.stat(follow_symlinks=True)
    except OSError as error:
        if entry.is_symlink():
            if is_image_name(entry.name):
                what = "symlink loop" if error.errno == errno.ELOOP else "broken symlink"
                result.problems.append(ScanProblem(entry.path, what))
            return None
        result.problems.append(ScanProblem(entry.path, f"cannot stat: {_reason(error)}"))
        return None
    if stat.S_ISDIR(info.st_mode):
        return "dir"
    if stat.S_ISREG(info.st_mode) and is_image_name(entry.name):
        result.files.append(FoundFile(entry.path, info.st_size, info.st_mtime_ns))
    return None
