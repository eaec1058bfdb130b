"""The read stage of a build: read and hash each file, decode the new ones in worker
processes, and hand over ready batches, while the models work on the previous batch.

Files whose content the index already holds (unchanged content at a new mtime, a move, a
copy) are only hashed, never decoded: the build reuses their caption and vector.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from .decode import DecodedImage, new_content_hasher
from .decode_pool import DecodeJob, DecodePool
from .scan import FoundFile

_READ_CHUNK = 1 << 20


@dataclass
class Prepared:
    """A file made ready for the models: `picture` when it needs them, `reusable` when its
    content is already indexed, or `error` saying why it cannot be indexed."""

    found: FoundFile
    hash: str = ""
    picture: DecodedImage | None = None
    reusable: bool = False
    error: str | None = None


def hash_file(found: FoundFile) -> Prepared:
    """Read a file and hash its content; unreadable or empty files come back with `error`."""
    digest = new_content_hasher()
    size = 0
    try:
        with open(found.path, "rb") as handle:
            while chunk := handle.read(_READ_CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except OSError as error:
        return Prepared(found, error=f"cannot read: {error.strerror or type(error).__name__}")
    if size == 0:
        return Prepared(found, error="empty file (0 bytes)")
    return Prepared(found, hash=digest.hexdigest())


def prepare_batches(
    work: list[FoundFile],
    batch_size: int,
    is_known_content: Callable[[str], bool],
    pool: DecodePool,
    min_side: int = 480,
    clip_size: int | None = None,
    input_size: int | None = None,
) -> Iterator[list[Prepared]]:
    """Batches of prepared files, in the order of `work`; with `clip_size` and `input_size`,
    the workers also make the CLIP model's and the reranker's inputs, so the main process
    only runs the models."""
    for start in range(0, len(work), batch_size):
        batch = [hash_file(found) for found in work[start : start + batch_size]]
        for item in batch:
            item.reusable = not item.error and is_known_content(item.hash)
        needed = [i for i, item in enumerate(batch) if not item.error and not item.reusable]
        jobs = [DecodeJob(i, batch[i].found.path, min_side, clip_size, input_size) for i in needed]
        for i, outcome in pool.decode(jobs):
            if isinstance(outcome, DecodedImage):
                batch[i].picture = outcome
            else:
                batch[i].error = outcome
        yield batch


def prefetched(items: Iterable, depth: int = 1) -> Iterator:
    """Run `items` in a background thread, `depth` items ahead of the consumer.

    Exceptions in the producer are raised in the consumer; a consumer that stops early
    lets the producer finish its current item and end.
    """
    handoff: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(message) -> bool:
        while not stop.is_set():
            try:
                handoff.put(message, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(("item", item)):
                    return
            put(("end", done))
        except BaseException as error:  # noqa: BLE001  (handed to the consumer)
            put(("error", error))

    thread = threading.Thread(target=produce, name="read-stage", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = handoff.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()
        thread.join(timeout=60)
