"""The writer lock of an index folder: one build at a time, any number of readers.

An exclusive `flock` on `build.lock` in the index folder. The kernel drops it when the
process dies, so a killed build never leaves the index locked, and anyone can ask whether
a build is running right now (`build_running`).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import IndexLocked

LOCK_NAME = "build.lock"


def build_running(index_dir: str | os.PathLike) -> str | None:
    """Who is building the index in `index_dir` right now ("pid 123"), or None."""
    path = Path(index_dir) / LOCK_NAME
    try:
        handle = open(path)  # noqa: SIM115  (closed below, after the probe)
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return handle.read().strip() or "another process"
        fcntl.flock(handle, fcntl.LOCK_UN)
        return None


class WriterLock:
    """An exclusive lock on an index folder for one writer. The kernel drops it when the
    process dies, so a killed build never leaves the index locked."""

    def __init__(self, index_dir: str | os.PathLike) -> None:
        self.path = Path(index_dir) / LOCK_NAME
        self._file = None

    def acquire(self) -> None:
        """Take the lock or raise IndexLocked at once."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115  (kept open while the lock is held)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise IndexLocked(
                f"index {self.path.parent} is being built by {holder}; wait for it to finish"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        """Let go of the lock."""
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock for the length of a with-block."""
        self.acquire()
        try:
            yield
        finally:
            self.release()
