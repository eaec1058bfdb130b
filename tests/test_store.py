import os

import numpy as np
import pytest

from indexer.errors import IndexCorrupt, IndexerError, IndexLocked
from indexer.lock import WriterLock
from indexer.store import SCHEMA_VERSION, ImageRecord, IndexStore, db_path_of, fs_path_of
from indexer.vector_index import FAISS_NAME, load_vector_index, save_vector_index


def record(path, seed, dim=8):
    vector = np.random.default_rng(seed).random(dim, dtype=np.float32)
    return ImageRecord(path, 10, 20, f"hash{seed}", 4, 3, f"caption {seed}",
                       vector / np.linalg.norm(vector))  # fmt: skip


@pytest.fixture
def store(tmp_path):
    store = IndexStore.open(tmp_path / "index", create=True)
    store.record_models("cap", "clip", 8)
    yield store
    store.close()


def test_save_and_read_back(store):
    ids = store.save_images([record("/p/a.jpg", 1), record("/p/b.jpg", 2)], "cap", "clip")
    assert store.count_images() == 2
    row = store.image(ids[0])
    assert (row["path"], row["caption"], row["width"]) == ("/p/a.jpg", "caption 1", 4)
    assert set(store.known_files()) == {"/p/a.jpg", "/p/b.jpg"}
    # saving the same path again replaces the row and keeps its id
    assert store.save_images([record("/p/a.jpg", 3)], "cap", "clip") == [ids[0]]
    assert store.count_images() == 2


def test_non_utf8_paths_round_trip(store):
    path = os.fsdecode(b"/p/caf\xe9.jpg")
    text, raw = db_path_of(path)
    assert raw == b"/p/caf\xe9.jpg" and "\\xe9" in text
    (image_id,) = store.save_images([record(path, 1)], "cap", "clip")
    assert fs_path_of(store.image(image_id)) == path
    assert path in store.known_files()


def test_failures_are_recorded_once_per_path(store):
    store.record_failures([("/p/x.jpg", 1, 2, "bad")])
    store.record_failures([("/p/x.jpg", 1, 3, "still bad")])
    assert store.known_failures() == {"/p/x.jpg": (1, 3)}
    assert [row["reason"] for row in store.failures()] == ["still bad"]


def test_missing_index_and_damaged_database(tmp_path):
    with pytest.raises(IndexerError, match="no index"):
        IndexStore.open(tmp_path / "none")
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "index.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(IndexCorrupt, match="damaged"):
        IndexStore.open(folder)


def test_vector_file_is_rebuilt_when_missing_damaged_or_stale(store):
    store.save_images([record("/p/a.jpg", 1), record("/p/b.jpg", 2)], "cap", "clip")
    vectors = load_vector_index(store)
    assert vectors.count == 2 and "missing" in vectors.notice
    assert save_vector_index(store, vectors)
    assert load_vector_index(store).notice is None

    store.save_images([record("/p/c.jpg", 3)], "cap", "clip")  # rows changed, file did not
    stale = load_vector_index(store)
    assert stale.count == 3 and "out of date" in stale.notice
    save_vector_index(store, stale)

    path = store.index_dir / FAISS_NAME
    path.write_bytes(path.read_bytes()[:100])
    damaged = load_vector_index(store)
    assert damaged.count == 3 and "damaged" in damaged.notice


def test_writer_lock_is_exclusive_and_released(tmp_path):
    first, second = WriterLock(tmp_path), WriterLock(tmp_path)
    with first.held(), pytest.raises(IndexLocked, match="being built"):
        second.acquire()
    with second.held():
        pass


def test_an_older_schema_is_upgraded_in_place(tmp_path):
    store = IndexStore.open(tmp_path / "old", create=True)
    store.save_images([record("/p/a.jpg", 1)], "cap", "clip")
    for statement in ("DROP TABLE tags", "ALTER TABLE images DROP COLUMN taken_at",
                      "ALTER TABLE images DROP COLUMN phash",
                      "UPDATE meta SET value = '1' WHERE key = 'schema_version'"):  # fmt: skip
        store.db.execute(statement)
    store.db.conn.commit()
    store.close()
    upgraded = IndexStore.open(tmp_path / "old")
    assert {"taken_at", "phash"} <= set(upgraded.db["images"].columns_dict)
    assert "tags" in upgraded.db.table_names()
    assert upgraded.get_meta("schema_version") == str(SCHEMA_VERSION)
    assert upgraded.image(1)["path"] == "/p/a.jpg"
    upgraded.close()


def test_a_large_library_gets_an_approximate_index_with_high_recall(store, monkeypatch):
    import indexer.vector_index as vector_index

    monkeypatch.setattr(vector_index, "EXACT_LIMIT", 500)
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(40, 8)).astype(np.float32)
    records = []
    for n in range(3000):
        vector = centres[n % 40] + rng.normal(scale=0.3, size=8).astype(np.float32)
        records.append(ImageRecord(f"/p/{n}.jpg", 1, 1, f"h{n}", 4, 3, "c",
                                   vector / np.linalg.norm(vector)))  # fmt: skip
    store.save_images(records, "cap", "clip")
    approximate = load_vector_index(store)
    assert approximate.kind == "ivf" and approximate.count == 3000
    exact = vector_index.empty_index(8)
    for ids, batch in store.iter_vectors():
        exact.index.add_with_ids(batch, ids)
    queries = np.stack([r.vector for r in records[:50]])
    _, truth = exact.search(queries, 10)
    _, found = approximate.search(queries, 10)
    recall = np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth, found, strict=True)])
    assert recall >= 0.95
    allowed = np.array([5, 6, 7], dtype=np.int64)
    _, restricted = approximate.search(queries[:1], 3, allowed)
    assert set(restricted[0]) <= {5, 6, 7}
    assert save_vector_index(store, approximate)
    assert load_vector_index(store).kind == "ivf"
