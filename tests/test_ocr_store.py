"""The store's side of text in photos: the text pass's work list and markers, and the
substring search that works where OCR drops spaces and for Chinese."""

import json

import numpy as np

from indexer.store import SCHEMA_VERSION, ImageRecord, IndexStore
from search.filters import Filters

READER = "reader-1"


def record(path, content):
    vector = np.ones(4, np.float32) / 2
    return ImageRecord(path, 1, 1, content, 10, 10, None, vector, None, None)


def store_with(tmp_path, contents):
    store = IndexStore.open(tmp_path / "index", create=True)
    store.save_images([record(f"/p/{i}.jpg", c) for i, c in enumerate(contents)], "cap", "clip")
    return store


def test_text_is_found_by_any_piece_of_it_spaces_and_case_aside(tmp_path):
    store = store_with(tmp_path, ["h0", "h1", "h2"])
    assert store.count_text_pending(READER) == 3
    store.set_text([("h0", "OPEN 24 HOURS\nGrand Hotel", "[]"), ("h1", "欢迎光临咖啡店", "[]"),
                    ("h2", "", "[]")], READER)  # fmt: skip
    assert store.count_text_pending(READER) == 0
    assert store.text_counts() == {"read": 3, "with_text": 2}
    for term in ("open24hours", "OPEN24", "24 hours", "hotel", "Hours"):
        assert store.text_matches(term, 10) == [1], term
    assert store.text_matches("咖啡", 10) == [2]  # two characters: below the trigram size
    assert store.text_matches("光临咖啡", 10) == [2]
    for term in ("nothing", "%", "_", '"', "x"):
        assert store.text_matches(term, 10) == []
    assert list(store.ids_where(Filters(has_text=True))) == [1, 2]
    assert store.text_matches("hotel", 10, Filters(folder="/elsewhere")) == []
    assert store.texts_of([1, 2, 3]) == {1: ("OPEN 24 HOURS\nGrand Hotel", "[]"),
                                         2: ("欢迎光临咖啡店", "[]")}  # fmt: skip
    store.close()


def test_new_content_or_another_reader_is_read_again_and_copies_share_text(tmp_path):
    store = store_with(tmp_path, ["h0", "h1"])
    store.set_text([("h0", "SALE", "[]"), ("h1", "EXIT", "[]")], READER)
    store.save_images([record("/p/0.jpg", "h9")], "cap", "clip")  # the file changed
    assert store.text_matches("sale", 10) == []
    assert [row["path"] for row in store.pending_text(READER, 0, 10)] == ["/p/0.jpg"]
    store.save_images([record("/p/copy.jpg", "h1")], "cap", "clip")  # a copy, read before
    assert store.adopt_text(READER) == 1
    assert sorted(store.text_matches("exit", 10)) == [2, 3]
    assert store.count_text_pending("reader-2") == 3
    store.remove_images([2])
    assert store.text_matches("exit", 10) == [3]
    store.close()


def test_an_index_without_text_gains_the_columns_and_its_photos_wait_for_reading(tmp_path):
    store = store_with(tmp_path, ["h0"])
    for statement in ("DROP TRIGGER photo_text_insert", "DROP TRIGGER photo_text_update",
                      "DROP TRIGGER photo_text_delete", "DROP TABLE photo_text",
                      "DROP INDEX images_ocr_model", "ALTER TABLE images DROP COLUMN ocr_text",
                      "ALTER TABLE images DROP COLUMN ocr_lines",
                      "ALTER TABLE images DROP COLUMN ocr_model",
                      "UPDATE meta SET value = '2' WHERE key = 'schema_version'"):  # fmt: skip
        store.db.execute(statement)
    store.db.conn.commit()
    store.close()
    upgraded = IndexStore.open(tmp_path / "index")
    assert upgraded.get_meta("schema_version") == str(SCHEMA_VERSION)
    assert upgraded.count_text_pending(READER) == 1
    lines = json.dumps([{"text": "EXIT", "confidence": 0.9, "box": [[0, 0]] * 4}])
    upgraded.set_text([("h0", "EXIT", lines)], READER)
    assert upgraded.text_matches("exit", 5) == [1]
    upgraded.close()
