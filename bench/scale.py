"""Whole queries without rerank at library sizes up to millions, through the product's path.

For each size a real index folder is written: that many generated rows in the SQLite store
(clip-like vectors from `queries.clip_like_vectors`, captions from a few dozen words), the
FAISS index the indexer would build from them (`rebuild_from_store`), saved where a search
finds it. Then `SearchEngine.search(query, rerank=False)` answers generated queries: the
CLIP text tower, FAISS, the caption words (SQLite FTS5) and fusion, as `indexer search`
does. Each step is also timed alone, to say where the time goes. The folder is deleted
before the next size: nothing is kept outside the benchmark's temporary folder.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np

from .measure import latencies_ms, percentiles

COLOURS = ["red", "green", "blue", "yellow", "orange", "purple", "black", "white", "grey", "brown"]
SHAPES = ["circle", "square", "triangle", "star", "heart", "ring", "cross", "arrow"]
SIZES = ["small", "large", "tiny", "big"]
PLACES = ["field", "wall", "sky", "table", "floor", "road", "beach", "carpet"]
QUERIES = [
    "a red circle on a green field", "blue star", "a small yellow heart on the beach",
    "white square", "black arrow on a grey wall", "tiny purple ring", "a dog on a beach",
    "a large orange triangle in the sky", "brown cross on a carpet", "green things",
    "two people at a table", "a big blue square on a white road",
]  # fmt: skip
_CHUNK = 50_000


def captions(count: int, seed: int) -> list[str]:
    """`count` captions such as "a small red circle on a green field" (one or two shapes)."""
    rng = np.random.default_rng(seed)
    size, shape, other, place = (rng.integers(0, len(words), count)
                                 for words in (SIZES, SHAPES, SHAPES, PLACES))  # fmt: skip
    colour = rng.integers(0, len(COLOURS), (count, 3))
    two = rng.random(count) < 0.3
    out = []
    for i in range(count):
        first = f"a {SIZES[size[i]]} {COLOURS[colour[i, 0]]} {SHAPES[shape[i]]}"
        if two[i]:
            first += f" and a {COLOURS[colour[i, 2]]} {SHAPES[other[i]]}"
        out.append(f"{first} on a {COLOURS[colour[i, 1]]} {PLACES[place[i]]}")
    return out


def write_library(folder: Path, count: int, clip_spec: str, dim: int) -> dict:
    """An index folder of `count` generated photos; returns the seconds its parts took."""
    from indexer.store import ImageRecord, IndexStore
    from indexer.vector_index import load_vector_index, save_vector_index

    from .queries import clip_like_vectors

    started = time.perf_counter()
    vectors, texts = clip_like_vectors(count, dim), captions(count, seed=3)
    store = IndexStore.open(folder, create=True)
    store.record_models("bench-generated-captions", clip_spec, dim)
    for start in range(0, count, _CHUNK):
        store.insert_new_images(
            (ImageRecord(f"/photos/{i // 1000:04d}/{i:07d}.jpg", 2_000_000 + i,
                         1_600_000_000_000_000_000 + i * 10**9, f"{i:016x}",
                         4000 if i % 3 else 3000, 3000 if i % 3 else 4000, texts[i], vectors[i])
             for i in range(start, min(count, start + _CHUNK))),
            "bench-generated-captions", clip_spec,
        )  # fmt: skip
    del vectors, texts
    rows_s = time.perf_counter() - started
    started = time.perf_counter()
    index = load_vector_index(store)  # no file yet: built from the rows as the indexer does
    save_vector_index(store, index)
    store.close()
    return {"rows_s": rows_s, "index_s": time.perf_counter() - started, "kind": index.kind}


def recall_at(index, exact, queries: np.ndarray, k: int = 10) -> float:
    """Mean recall@k of `index` against the `exact` index of the same vectors."""
    _, truth = exact.search(queries, k)
    _, found = index.search(queries, k)
    return float(np.mean([len(set(t) & set(f)) / k for t, f in zip(truth, found, strict=True)]))


def rss_mb() -> float:
    """This process's resident memory now, in MB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def one_size(count: int, embedder, workdir: Path, k: int = 10) -> dict:
    """The figures of one library size (see `sweep`)."""
    from indexer.store import DB_NAME
    from search.engine import SearchEngine

    folder = workdir / f"library-{count}"
    built = write_library(folder, count, embedder.name, embedder.dim)
    out: dict = {
        "photos": count,
        "index": built["kind"],
        "rows_s": round(built["rows_s"], 1),
        "index_s": round(built["index_s"], 1),
    }
    before = rss_mb()
    engine = SearchEngine(folder, load_embedder=lambda spec: embedder)
    try:
        out.update(query_times(engine, embedder, k))
        out["engine_rss_mb"] = round(rss_mb() - before, 1)
        out["load_1min"] = round(os.getloadavg()[0], 1)  # the machine's, while it was timed
        out.update(recalls(engine, embedder, k))
    finally:
        engine.close()
    out["faiss_mb"] = round((folder / "vectors.faiss").stat().st_size / 2**20, 1)
    files = [p.stat().st_size for p in folder.iterdir() if p.name.startswith(DB_NAME)]
    out["sqlite_mb"] = round(sum(files) / 2**20, 1)  # with its -wal file
    shutil.rmtree(folder)
    return out


def query_times(engine, embedder, k: int, runs: int = 40) -> dict:
    """p50/p90/p99 ms of whole queries without rerank, and p50 ms of their steps alone.

    FAISS alone searches random directions: the random-weight text tower puts every query
    near one direction (cosine 0.6 or more between any two), so its lists would be the same.
    """
    from search.engine import MIN_POOL
    from search.retrieve import caption_candidates, vector_candidates

    far = far_probes(embedder.dim)
    pool = max(MIN_POOL, 5 * k)  # as SearchEngine.retrieve without rerank

    def pick(i: int) -> str:
        return QUERIES[i % len(QUERIES)]

    steps = {
        "query": lambda i: engine.search(pick(i), k=k, rerank=False),
        "text_tower": lambda i: embedder.embed_texts([pick(i)]),
        "faiss": lambda i: vector_candidates(engine.vectors(), far[i % len(far)], pool),
        "captions": lambda i: caption_candidates(engine.store, pick(i), pool),
    }
    times = {name: percentiles(latencies_ms(action, runs)) for name, action in steps.items()}
    out = {f"{key}_ms": round(value, 1) for key, value in times.pop("query").items()}
    out["cpu_p50_ms"] = round(percentiles(cpu_ms(steps["query"], runs))["p50"], 1)
    return out | {f"{name}_p50_ms": round(value["p50"], 1) for name, value in times.items()}


def cpu_ms(action, runs: int) -> list[float]:
    """CPU milliseconds (all of this process's threads) of each of `runs` calls `action(i)`:
    what a query costs whatever else the machine is running, unlike its wall time."""
    times = []
    for i in range(runs):
        started = time.process_time()
        action(i)
        times.append(1000 * (time.process_time() - started))
    return times


def recalls(engine, embedder, k: int) -> dict:
    """Recall@k of the engine's FAISS index against exact search: for 100 probes a small
    step from stored photos, for 100 random directions (as far from every photo as a text
    query is from its photos: cosine about 0.2) and for the text tower's vectors of the
    queries."""
    from indexer.vector_index import empty_index

    index = engine.vectors()
    exact = empty_index(index.dim)
    for ids, batch in engine.store.iter_vectors():
        exact.index.add_with_ids(np.ascontiguousarray(batch, dtype=np.float32), ids)
    near = engine.store.sample_vectors(100) + 0.01
    probes = {"": near, "_far": far_probes(index.dim), "_text": embedder.embed_texts(QUERIES)}
    return {
        f"recall@10{name}": round(recall_at(index, exact, unit(vectors), k), 3)
        for name, vectors in probes.items()
    }


def far_probes(dim: int, count: int = 100) -> np.ndarray:
    """`count` random unit vectors: about as far from the photos as a text query (cosine
    about 0.2 to the nearest), the hard case for an approximate index."""
    return unit(np.random.default_rng(5).standard_normal((count, dim), dtype=np.float32))


def unit(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1."""
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def sweep(sizes: list[int], clip_spec: str, device: str, workdir: Path) -> list[dict]:
    """Per library size: latency of whole queries without rerank (p50/p90/p99) and of their
    steps alone (p50), recall@10 of the FAISS index against exact search, and memory."""
    from indexer.embed import ClipEmbedder

    embedder = ClipEmbedder(clip_spec, device)  # as SearchEngine loads it
    return [one_size(count, embedder, workdir) for count in sizes]


def sweep_table(rows: list[dict]) -> str:
    """The sweep's figures as a plain-text table."""
    from .measure import table

    header = ("photos", "index", "build s", "p50 ms", "p90 ms", "CPU ms", "text tower", "FAISS",
              "captions", "recall@10", "FAISS MB", "SQLite MB", "engine RSS MB",
              "load")  # fmt: skip
    lines = [header] + [
        (r["photos"], r["index"], round(r["rows_s"] + r["index_s"], 1), r["p50_ms"],
         r["p90_ms"], r["cpu_p50_ms"], r["text_tower_p50_ms"], r["faiss_p50_ms"],
         r["captions_p50_ms"], f"{r['recall@10']} / {r['recall@10_far']} / {r['recall@10_text']}",
         r["faiss_mb"], r["sqlite_mb"], r["engine_rss_mb"], r["load_1min"])
        for r in rows
    ]  # fmt: skip
    return table("Queries without rerank by library size: text tower + FAISS search + caption "
                 "words (k=10; steps alone: p50 ms; recall@10 near photos / far from them / "
                 "text queries)", lines)  # fmt: skip
