"""Decoding in worker processes, each file with a time and a memory budget.

Image decoders are native code fed by untrusted files: a hostile file can crash a decoder,
make it hang, or make it allocate without end. Here each file is decoded in a worker
process whose address space is capped; a worker that crashes or runs past the time budget
is killed and replaced, and the file gets a failure reason. Workers also let decoding run
on other cores while the models work in the main process.

Workers start from a fork server (never a fork of a process that already runs torch's
threads), and import only Pillow and this package's decode module.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait

from .decode import DecodedImage, DecodeError, clip_crop
from .model_inputs import square_input

DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MEMORY_MB = 3072


@dataclass(frozen=True)
class DecodeJob:
    """What to decode: `key` comes back with the result."""

    key: object
    path: str
    min_side: int = 480
    clip_size: int | None = None  # also prepare the CLIP input (see decode.clip_crop)
    input_size: int | None = None  # also prepare the reranker's input (see model_inputs)
    read_text: str | None = None  # also read its text with this reader ("module:factory")


def _worker_main(conn: Connection, memory_mb: int, decoder: str) -> None:
    """A worker's life: take jobs from `conn`, answer ("ok", image) or ("error", reason)."""
    import importlib
    import resource

    if memory_mb > 0:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    module, _, name = decoder.partition(":")
    decode = getattr(importlib.import_module(module), name)
    readers: dict = {}  # text readers, made on first use (see indexer.ocr)
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        try:
            decoded = decode(job.path, job.min_side)
            if job.clip_size:
                decoded.clip_image = clip_crop(decoded.image, job.clip_size)
            if job.input_size:
                decoded.model_input = square_input(decoded.image, job.input_size)
            if job.read_text:
                _read_text(decoded, job.read_text, readers)
            conn.send(("ok", decoded))
        except DecodeError as error:
            conn.send(("error", str(error)))
        except MemoryError:
            conn.send(("error", f"decoding needed more than the {memory_mb} MB memory budget"))
        except OSError as error:
            conn.send(("error", f"cannot read: {error.strerror or error}"))
        except Exception as error:  # noqa: BLE001  (a decoder bug must not end the worker)
            conn.send(("error", f"decoder failed: {type(error).__name__}: {error}"[:300]))


def _read_text(decoded: DecodedImage, spec: str, readers: dict) -> None:
    """Fill in the picture's text lines, or why they could not be read."""
    from .ocr import READER_UNAVAILABLE, build_reader

    try:
        if spec not in readers:
            readers[spec] = build_reader(spec)
    except Exception as error:  # noqa: BLE001
        decoded.text_error = f"{READER_UNAVAILABLE}{type(error).__name__}: {error}"[:300]
        return
    try:
        size = (decoded.width, decoded.height)
        decoded.text_lines = readers[spec].read(decoded.image, size)
    except MemoryError:
        decoded.text_error = "reading its text needed more than the memory budget"
    except Exception as error:  # noqa: BLE001  (the picture itself is fine)
        decoded.text_error = f"text reader failed: {type(error).__name__}: {error}"[:300]


def decode_path(path: str, min_side: int) -> DecodedImage:
    """The workers' default decoder: read the file and decode it."""
    from .decode import decode_image

    with open(path, "rb") as handle:
        data = handle.read()
    return decode_image(data, min_side)


class _Worker:
    def __init__(self, context, memory_mb: int, decoder: str) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=_worker_main, args=(child, memory_mb, decoder), daemon=True
        )
        self.process.start()
        child.close()
        self.job: DecodeJob | None = None
        self.started = 0.0

    def give(self, job: DecodeJob) -> None:
        self.job, self.started = job, time.monotonic()
        self.conn.send(job)

    def kill(self) -> None:
        self.process.kill()
        self.process.join(5)
        self.conn.close()


class DecodePool:
    """Decode files in `workers` processes. Use as a context manager, then `decode(jobs)`.

    `decoder` names the decode function as "module:function" (tests pass hostile ones).
    """

    def __init__(
        self,
        workers: int | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        memory_mb: int = DEFAULT_MEMORY_MB,
        decoder: str = "indexer.decode_pool:decode_path",
    ) -> None:
        self.size = max(1, workers or min(4, os.cpu_count() or 1))
        self.timeout_s, self.memory_mb, self.decoder = timeout_s, memory_mb, decoder
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(["indexer.decode"])
        self._workers: list[_Worker] = []

    def __enter__(self) -> DecodePool:
        self._workers = [self._spawn() for _ in range(self.size)]
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _spawn(self) -> _Worker:
        with _importable_main():
            return _Worker(self._context, self.memory_mb, self.decoder)

    def close(self) -> None:
        """Stop every worker."""
        for worker in self._workers:
            with contextlib.suppress(OSError):  # a worker that already died
                worker.conn.send(None)
        for worker in self._workers:
            worker.process.join(2)
            if worker.process.is_alive():
                worker.kill()
        self._workers = []

    def decode(self, jobs: Iterable[DecodeJob]) -> Iterator[tuple[object, DecodedImage | str]]:
        """Yield (key, DecodedImage) or (key, failure reason) for every job, as they finish."""
        pending = deque(jobs)
        while pending or any(worker.job for worker in self._workers):
            for worker in self._workers:
                if worker.job is None and pending:
                    worker.give(pending.popleft())
            yield from self._collect()

    def _collect(self) -> Iterator[tuple[object, DecodedImage | str]]:
        busy = [worker for worker in self._workers if worker.job]
        deadline = min(worker.started for worker in busy) + self.timeout_s
        ready = wait([worker.conn for worker in busy], max(0.0, deadline - time.monotonic()))
        for index, worker in enumerate(self._workers):
            if worker.job is None:
                continue
            if worker.conn in ready:
                job = worker.job
                try:
                    status, value = worker.conn.recv()
                    worker.job = None
                    yield job.key, value
                    continue
                except (EOFError, OSError):
                    reason = _crash_reason(worker)
            elif time.monotonic() - worker.started >= self.timeout_s:
                reason = f"decoding took longer than {self.timeout_s:g} s"
            else:
                continue
            job = worker.job
            worker.kill()
            self._workers[index] = self._spawn()
            yield job.key, reason


@contextlib.contextmanager
def _importable_main():
    """Workers re-import the parent's __main__ to unpickle their target; when that is a
    script piped to Python, a notebook or a Streamlit page, importing it fails or runs it.
    The workers need nothing from it, so they are started with this module standing in."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = sys.modules[__name__]
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def _crash_reason(worker: _Worker) -> str:
    worker.process.join(5)
    code = worker.process.exitcode
    if code is not None and code < 0:
        return f"decoder crashed (signal {-code})"
    return f"decoder crashed (exit status {code})"
