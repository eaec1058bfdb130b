"""Query cost: FAISS search at several library sizes, and whole queries with and without rerank.

Vectors for the size sweep are synthetic but shaped like CLIP's: unit vectors scattered
around a few thousand directions (photo libraries are full of near-repeats), so recall of
the approximate index is measured on clustered data rather than on uniform noise, where
every index looks bad and no library looks like.
"""

from __future__ import annotations

import numpy as np

from indexer.vector_index import EXACT_LIMIT, VectorIndex, empty_index, ivf_index, ivf_lists

from .measure import latencies_ms, percentiles, timed


def clip_like_vectors(count: int, dim: int, seed: int = 0) -> np.ndarray:
    """`count` unit vectors around ~sqrt(count) directions, with CLIP-like spread."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(16, int(np.sqrt(count))), dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.empty((count, dim), dtype=np.float32)
    for start in range(0, count, 100_000):  # in chunks: 1M x 512 floats is 2 GB already
        stop = min(count, start + 100_000)
        noise = rng.standard_normal((stop - start, dim), dtype=np.float32) * (0.8 / np.sqrt(dim))
        out[start:stop] = centres[rng.integers(0, len(centres), stop - start)] + noise
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def index_for(vectors: np.ndarray) -> tuple[VectorIndex, float]:
    """The index type the indexer would choose for this many vectors, and its build time."""
    count, dim = vectors.shape
    ids = np.arange(count, dtype=np.int64)

    def build() -> VectorIndex:
        if count <= EXACT_LIMIT:
            index = empty_index(dim)
        else:
            sample = vectors[np.random.default_rng(1).choice(count, 40 * ivf_lists(count))]
            index = ivf_index(dim, sample, count)
        index.index.add_with_ids(vectors, ids)
        return index

    holder: list[VectorIndex] = []
    seconds = timed(lambda: holder.append(build()))
    return holder[0], seconds


def sweep(sizes: list[int], dim: int = 512, queries: int = 100, k: int = 10) -> list[dict]:
    """Latency percentiles, recall@k against exact search, and memory, per library size."""
    import faiss

    results = []
    for count in sizes:
        vectors = clip_like_vectors(count, dim)
        index, build_s = index_for(vectors)
        probes = vectors[np.random.default_rng(2).choice(count, queries)] + 0.01
        probes /= np.linalg.norm(probes, axis=1, keepdims=True)
        times = latencies_ms(lambda i, p=probes, ix=index: ix.search(p[i % len(p)], k), queries)
        exact = faiss.IndexFlatIP(dim)
        exact.add(vectors)
        _, truth = exact.search(probes, k)
        _, found = index.search(probes, k)
        pairs = zip(truth, found, strict=True)
        recall = float(np.mean([len(set(t) & set(f)) / k for t, f in pairs]))
        results.append({
            "vectors": count, "index": index.kind, "build_s": round(build_s, 1),
            **{f"{key}_ms": round(value, 2) for key, value in percentiles(times).items()},
            "recall@10": round(recall, 3),
            "memory_mb": round(len(faiss.serialize_index(index.index)) / 2**20, 1),
        })  # fmt: skip
        del vectors, index, exact
    return results


def engine_latency(engine, queries: list[str], rerank: bool, runs: int = 20) -> dict:
    """Median and p90 of whole queries through a warm SearchEngine (models already loaded)."""
    times = latencies_ms(
        lambda i: engine.search(queries[i % len(queries)], k=10, rerank=rerank, rerank_top=10),
        runs,
    )
    return {key + "_ms": round(value, 1) for key, value in percentiles(times).items()}
