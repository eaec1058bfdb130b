"""A bounded queue in front of the models.

A model call takes from tens of milliseconds (a CLIP query) to seconds (ten reranked
pictures, a caption) of every core, so the server runs one at a time. Requests that need a
model wait their turn in a queue of at most `limit` places; one that finds the queue full is
answered at once with 503 and Retry-After instead of joining an unbounded pile-up.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Busy(Exception):
    """The model queue is full; try again in `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the server is busy with model work; retry in {retry_after} s")
        self.retry_after = retry_after


class ModelGate:
    """One model call at a time, at most `limit` more waiting.

    `turn()` is a context manager: it raises Busy when `limit` requests are waiting already.
    Re-entrant within a thread, so a request that holds the gate can call code that asks
    for it again."""

    def __init__(self, limit: int = 8, retry_after: int = 2) -> None:
        if limit < 0:
            raise ValueError("the model queue limit cannot be negative")
        self.limit, self.retry_after = limit, retry_after
        self._running = threading.RLock()
        self._count = threading.Lock()
        self._waiting = 0
        self.refused = 0

    @property
    def waiting(self) -> int:
        """Requests waiting for their turn now."""
        return self._waiting

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Wait for the models, or raise Busy when the queue is full."""
        if self._running.acquire(blocking=False):
            try:
                yield
            finally:
                self._running.release()
            return
        with self._count:
            if self._waiting >= self.limit:
                self.refused += 1
                raise Busy(self.retry_after)
            self._waiting += 1
        try:
            self._running.acquire()
        finally:
            with self._count:
                self._waiting -= 1
        try:
            yield
        finally:
            self._running.release()
