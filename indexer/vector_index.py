"""The FAISS index of an index folder, derived from the vectors stored in SQLite.

The file `vectors.faiss` starts with a one-line header naming the vectors version (a
counter the store bumps with every commit that changes vectors) and the vector count,
followed by the serialised FAISS index. It is written to a temporary file, flushed and
renamed into place, so it is either the old file or the new one. When it is missing,
damaged or older than the rows, it is rebuilt from the stored vectors: the database is
the truth and this file is only a fast copy of it.

The index type follows the size: exact search (a flat inner-product index) up to
EXACT_LIMIT vectors, where one query takes tens of milliseconds on 2 cores; beyond that an
inverted-file index (IVF, sqrt(N) lists, a tenth of them and at least 64 probed per query),
whose recall@10 against exact search the benchmark measures (`python -m bench`, its sweep).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .store import IndexStore

FAISS_NAME = "vectors.faiss"
_MAGIC = b"photo-indexer-faiss v1"
EXACT_LIMIT = 50_000


@dataclass
class VectorIndex:
    """A FAISS inner-product index whose ids are image row ids; `notice` says if it was rebuilt."""

    index: object
    dim: int
    notice: str | None = None
    _dirty: bool = field(default=False, repr=False)

    @property
    def count(self) -> int:
        """Number of vectors."""
        return int(self.index.ntotal)

    @property
    def kind(self) -> str:
        """ "exact" (flat) or "ivf" (approximate)."""
        return "ivf" if hasattr(self.index, "nprobe") else "exact"

    def suits(self, count: int) -> bool:
        """True when this index type is the right one for `count` vectors (with slack, so a
        library near the limit does not flip back and forth)."""
        if self.kind == "exact":
            return count <= EXACT_LIMIT
        return count > EXACT_LIMIT // 2

    def upsert(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors, replacing any already stored under the same ids."""
        ids = np.asarray(ids, dtype=np.int64)
        self.remove(ids)
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
        self._dirty = True

    def remove(self, ids: np.ndarray) -> None:
        """Remove the vectors of these ids (absent ids are ignored)."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) and self.count:
            self.index.remove_ids(ids)
            self._dirty = True

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of the k nearest vectors to each query row, among the `allowed` ids
        when given; id -1 pads short results."""
        import faiss

        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = min(k, max(self.count, 1))
        if allowed is None:
            return self.index.search(queries, k)
        selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
        if self.kind == "ivf":
            # a narrow filter's photos may sit in lists a normal probe skips: probe them all
            # (the selector drops other ids before any distance is computed)
            narrow = len(allowed) * 10 < self.count
            nprobe = self.index.nlist if narrow else self.index.nprobe
            params = faiss.SearchParametersIVF(sel=selector, nprobe=nprobe)
        else:
            params = faiss.SearchParameters(sel=selector)
        return self.index.search(queries, k, params=params)


def empty_index(dim: int) -> VectorIndex:
    """A new, empty exact inner-product index for L2-normalised vectors of size `dim`."""
    import faiss

    return VectorIndex(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)), dim)


def ivf_lists(count: int) -> int:
    """Inverted lists for `count` vectors: about sqrt(count), FAISS's usual rule."""
    return int(min(4096, max(64, np.sqrt(count))))


def ivf_index(dim: int, training: np.ndarray, count: int) -> VectorIndex:
    """An empty IVF inner-product index for about `count` vectors, trained on `training`
    (a random sample of them, at least 40 per list as FAISS's k-means wants)."""
    import faiss

    lists = ivf_lists(count)
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, lists, faiss.METRIC_INNER_PRODUCT)
    index.train(np.ascontiguousarray(training, dtype=np.float32))
    index.nprobe = ivf_probes(lists)
    return VectorIndex(index, dim)


def ivf_probes(lists: int) -> int:
    """Lists searched per query: a tenth, and at least 64 (with fewer, queries as far from
    every photo as text queries are lost more than 5% of the exact top 10 at 60,000 to
    100,000 photos)."""
    return min(lists, max(64, lists // 10))


def rebuild_from_store(store: IndexStore, dim: int) -> VectorIndex:
    """A fresh index holding every vector stored in the database, of the type its size needs."""
    count = store.count_images()
    if count <= EXACT_LIMIT:
        vectors = empty_index(dim)
    else:
        vectors = ivf_index(dim, store.sample_vectors(40 * ivf_lists(count)), count)
    for ids, batch in store.iter_vectors():
        vectors.index.add_with_ids(np.ascontiguousarray(batch, dtype=np.float32), ids)
    return vectors


def load_vector_index(store: IndexStore) -> VectorIndex | None:
    """The index folder's FAISS index, rebuilt from the database if the file is not current.

    Returns None when the index has no vectors yet. A rebuilt index says why in `notice`.
    """
    dim = store.models()["vector_dim"]
    if not dim:
        return None
    path = store.index_dir / FAISS_NAME
    expected_version, expected_count = store.vectors_version(), store.count_images()
    problem = None
    try:
        version, count, index = _read(path)
        if index.d != dim:
            problem = f"has vectors of size {index.d}, not {dim}"
        elif (version, count, index.ntotal) != (expected_version, expected_count, expected_count):
            problem = "is out of date"
        else:
            if hasattr(index, "nprobe"):  # files written before the probe count changed
                index.nprobe = ivf_probes(index.nlist)
            return VectorIndex(index, dim)
    except FileNotFoundError:
        problem = "is missing"
    except ValueError as error:  # our header
        problem = f"is damaged ({error})"
    except (OSError, RuntimeError):  # FAISS says where in its C++ it failed: not for people
        problem = "is damaged (cannot be read)"
    rebuilt = rebuild_from_store(store, dim)
    rebuilt.notice = f"{path} {problem}; rebuilt it from the {rebuilt.count} stored vectors"
    rebuilt._dirty = True
    return rebuilt


def _read(path: Path):
    import faiss

    with open(path, "rb") as handle:
        header = handle.readline()
        payload = handle.read()
    parts = header.split()
    if len(parts) != 4 or b" ".join(parts[:2]) != _MAGIC:
        raise ValueError("not a photo-indexer FAISS file")
    version, count = int(parts[2]), int(parts[3])
    index = faiss.deserialize_index(np.frombuffer(payload, dtype=np.uint8))
    return version, count, index


def save_vector_index(store: IndexStore, vectors: VectorIndex) -> bool:
    """Write the index atomically, stamped with the store's current vectors version.

    Returns False (and writes nothing) when nothing changed since it was loaded.
    """
    import faiss

    if not vectors._dirty:
        return False
    path = store.index_dir / FAISS_NAME
    header = b"%s %d %d\n" % (_MAGIC, store.vectors_version(), vectors.count)
    payload = faiss.serialize_index(vectors.index)
    for stale in path.parent.glob(f".{FAISS_NAME}.*.tmp"):  # left by a killed writer
        stale.unlink(missing_ok=True)
    temporary = path.with_name(f".{FAISS_NAME}.{os.getpid()}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(header)
        handle.write(payload.tobytes())
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    _fsync_folder(path.parent)
    vectors._dirty = False
    return True


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
