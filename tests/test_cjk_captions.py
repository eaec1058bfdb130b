"""Captions in Chinese (ModelScope's Chinese OFA caption models write them without spaces)
are found by Chinese substrings: the word index cannot split them, the caption substring
table (FTS5 trigram, as for the text in photos) can."""

from PIL import Image

from indexer.build import build_index
from indexer.models import ModelSet
from indexer.store import SCHEMA_VERSION, IndexStore
from search.engine import SearchEngine
from tests.fakes import FakeEmbedder

CAPTIONS = {(640, 480): "一只红色的猫坐在沙发上", (480, 640): "蓝色的正方形在草地上",
            (500, 500): "a cat on a red sofa"}  # fmt: skip


class ChineseCaptioner:
    name = "chinese-captioner"

    def caption(self, images):
        return [CAPTIONS[image.size] for image in images]


def library(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, size in enumerate(CAPTIONS):
        Image.new("RGB", size, (40 * i, 90, 200 - 40 * i)).save(photos / f"p{i}.png")
    captioner, embedder = ChineseCaptioner(), FakeEmbedder()
    models = ModelSet(captioner.name, "fake-clip", lambda: captioner, lambda: embedder,
                      captioner, embedder)  # fmt: skip
    build_index([photos], tmp_path / "index", models, captions="now", read_text=None)
    return tmp_path / "index"


def test_chinese_captions_are_found_by_two_or_more_characters(tmp_path):
    index = library(tmp_path)
    engine = SearchEngine(index, load_embedder=lambda spec: FakeEmbedder(spec))
    for query, caption in (("红色", "一只红色的猫坐在沙发上"), ("沙发上的猫", None),
                           ("正方形", "蓝色的正方形在草地上")):  # fmt: skip
        hits = [hit for hit in engine.search(query, k=3, rerank=False).hits if hit.caption_rank]
        if caption is None:  # not a substring of any caption
            assert hits == [], query
        else:
            assert [hit.caption for hit in hits] == [caption], query
    english = engine.search("sofa", k=3, rerank=False).hits
    engine.close()
    assert [hit.caption for hit in english if hit.caption_rank] == ["a cat on a red sofa"]
    store = IndexStore.open(index)
    assert store.text_matches("sofa", 5, in_captions=True) == []  # only CJK captions there
    store.close()


def test_an_older_index_fills_the_caption_table_on_upgrade(tmp_path):
    index = library(tmp_path)
    store = IndexStore.open(index)
    for statement in ("DROP TRIGGER caption_text_insert", "DROP TRIGGER caption_text_update",
                      "DROP TRIGGER caption_text_delete", "DROP TABLE caption_text",
                      "UPDATE meta SET value = '3' WHERE key = 'schema_version'"):  # fmt: skip
        store.db.execute(statement)
    store.db.conn.commit()
    store.close()
    upgraded = IndexStore.open(index)
    assert upgraded.get_meta("schema_version") == str(SCHEMA_VERSION)
    assert len(upgraded.text_matches("红色", 5, in_captions=True)) == 1
    upgraded.close()
