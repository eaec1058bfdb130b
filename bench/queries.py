"""Query cost: whole queries with and without rerank, and the vectors of the size sweep.

The size sweep itself (whole queries without rerank on libraries up to millions of photos)
is `scale.py`. Its vectors are synthetic but shaped like CLIP's: unit vectors scattered
around a few thousand directions (photo libraries are full of near-repeats), so recall of
the approximate index is measured on clustered data rather than on uniform noise, where
every index looks bad and no library looks like.
"""

from __future__ import annotations

import numpy as np

from .measure import latencies_ms, percentiles


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


def engine_latency(engine, queries: list[str], rerank: bool, runs: int = 20) -> dict:
    """Median and p90 of whole queries through a warm SearchEngine (models already loaded)."""
    times = latencies_ms(
        lambda i: engine.search(queries[i % len(queries)], k=10, rerank=rerank, rerank_top=10),
        runs,
    )
    return {key + "_ms": round(value, 1) for key, value in percentiles(times).items()}
