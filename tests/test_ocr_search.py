"""Text in photos, end to end with the real OCR model (its weights ship in the
rapidocr-onnxruntime wheel): photos with English and Chinese text drawn in them (busy
backgrounds, several fonts and sizes, one turned 90 degrees, one upside down) and photos
without text are built into an index; search finds each text photo by one of its words,
explains why, and the reranker cannot hide it."""

import json
import shutil

import pytest

from indexer.build import build_index
from indexer.ocr_pass import reader_name
from indexer.status import index_status
from indexer.store import IndexStore
from search.engine import SearchEngine
from search.filters import Filters
from search.photo_text import matching_lines, text_terms
from search.rerank import Judgement
from testing.text_photos import TEXT_PHOTOS, write_text_photos
from tests.conftest import run_cli
from tests.fakes import FakeEmbedder, fake_models

# builds models or indexes, runs the CLI or a server: seconds to minutes
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def text_library(tmp_path_factory):
    """An index of TEXT_PHOTOS and three photos without text (fake CLIP, no captions)."""
    root = tmp_path_factory.mktemp("text_library")
    written = write_text_photos(root / "photos")
    report = build_index([root / "photos"], root / "index", fake_models(), captions="never")
    return root, written, report


def engine(index, reranker=None) -> SearchEngine:
    return SearchEngine(index, load_embedder=lambda spec: FakeEmbedder(spec),
                        load_reranker=(lambda: reranker) if reranker else None)  # fmt: skip


def test_the_build_reads_the_text_in_every_photo_and_none_in_the_others(text_library):
    root, written, report = text_library
    assert report.text_read == len(TEXT_PHOTOS) + 3 and not report.notices
    store = IndexStore.open(root / "index")
    texts = {row["path"]: row["ocr_text"] for row in store.db.query("SELECT * FROM images")}
    store.close()
    for path, photo in written.items():
        read = "".join(texts[path].split()).casefold()
        assert "".join(photo.lines).replace(" ", "").casefold() in read, (photo.name, read)
    assert [text for path, text in texts.items() if "plain_" in path] == ["", "", ""]
    passes = index_status(root / "index")["passes"]["text"]
    assert passes == {"done": 10, "with_text": len(TEXT_PHOTOS), "pending": 0}


@pytest.mark.parametrize("photo", TEXT_PHOTOS, ids=lambda photo: photo.name)
def test_search_finds_each_text_photo_by_one_of_its_words_and_says_why(text_library, photo):
    root, written, _ = text_library
    search = engine(root / "index")
    result = search.search(photo.probe, k=3, rerank=False)
    search.close()
    paths = [hit.path for hit in result.hits]
    wanted = next(path for path, p in written.items() if p is photo)
    assert wanted in paths, (photo.probe, paths)
    hit = result.hits[paths.index(wanted)]
    assert hit.text_rank == 1 and hit.text_terms == [photo.probe.casefold()]
    assert "text in photo: " in hit.why and hit.text_lines[0] in hit.why


def test_words_run_together_by_ocr_are_found_with_or_without_spaces(text_library):
    root, written, _ = text_library
    search = engine(root / "index")
    for query in ("open 24 hours", "OPEN24HOURS", "open24"):
        top = search.search(query, k=1, rerank=False).hits[0]
        assert top.path.endswith("shop.jpg") and top.text_rank == 1, query
    has_text = search.search("hotel", k=20, rerank=False, filters=Filters(has_text=True))
    search.close()
    assert {hit.path for hit in has_text.hits} == set(written)


class SaysNo:
    """A judge that cannot read: every picture is a clear "no"."""

    name, input_size = "says-no", 480

    def judge(self, images, text):
        return [Judgement(0.01, 0.97, 0.02) for _ in images]


class SaysMaybeToText:
    """A "maybe" to the first picture and every other one after it, "yes" to the rest: by
    P(yes) alone a "yes" would move above the first hit."""

    name, input_size = "says-maybe", 480

    def judge(self, images, text):
        return [Judgement(0.9, 0.05, 0.05) if i % 2 else Judgement(0.2, 0.2, 0.6)
                for i, _ in enumerate(images)]  # fmt: skip


def test_the_reranker_never_hides_a_text_match_and_a_maybe_keeps_its_place(text_library):
    root, _, _ = text_library
    search = engine(root / "index", SaysNo())
    result = search.search("pharmacy", k=5, rerank_top=5)
    assert result.hits[0].path.endswith("flipped.jpg") and not result.hits[0].rejected
    assert "kept in place for its text" in result.hits[0].why
    assert result.rejected == 4 and len(result.hits) == 1  # the rest: clear "no"s
    search.close()
    search = engine(root / "index", SaysMaybeToText())
    found = search.retrieve("pharmacy", k=5, rerank_top=5)
    judged = search.rerank(found, k=5, rerank_top=5)
    search.close()
    assert judged.hits[0].id == found.hits[0].id and judged.hits[0].verdict == "maybe"


def test_query_terms_and_matching_lines():
    assert text_terms("a sign saying OPEN 24 hours") == ["sign", "saying", "open", "hours",
                                                         "asignsayingopen24hours"]  # fmt: skip
    assert text_terms("咖啡") == ["咖啡"] and text_terms("店") == []
    assert matching_lines("Grand Hotel\nBudapest", ["budapest"]) == ["Budapest"]
    assert matching_lines("OPEN\n24 HOURS", ["open24hours"]) == ["OPEN 24 HOURS"]


def test_an_index_without_text_gains_it_on_the_next_build_without_models(tmp_path):
    photos, index = tmp_path / "photos", tmp_path / "index"
    write_text_photos(photos, plain=1)
    first = build_index([photos], index, fake_models(), captions="never", read_text=None)
    assert first.text_read == 0 and index_status(index)["passes"]["text"]["done"] == 0
    models = fake_models()
    second = build_index([photos], index, models, captions="never")
    assert second.text_read == len(TEXT_PHOTOS) + 1 and second.model_calls == 0
    assert models.embedder().images_seen == 0  # nothing embedded (or captioned) again
    store = IndexStore.open(index)
    assert store.count_text_pending(reader_name()) == 0
    store.close()
    shutil.copy(photos / "shop.jpg", photos / "shop copy.jpg")  # a copy is not read again
    third = build_index([photos], index, fake_models(), captions="never")
    assert third.new == 1 and third.text_read == 0


def test_cli_builds_with_and_without_text_and_searches_it(tmp_path, cli_env):
    photos = tmp_path / "photos"
    write_text_photos(photos, plain=1)
    run_cli("build", str(photos), "--captions", "never", "--no-ocr", env=cli_env)
    status = json.loads(run_cli("status", "--json", env=cli_env).stdout)
    assert status["passes"]["text"]["done"] == 0
    done = run_cli("build", str(photos), "--captions", "never", env=cli_env)
    assert f"text read in {len(TEXT_PHOTOS) + 1}" in done.stdout
    assert f"text read: {len(TEXT_PHOTOS) + 1} of" in run_cli("status", env=cli_env).stdout
    found = run_cli("search", "咖啡", "--no-rerank", "-k", "3", "--json", env=cli_env).stdout
    top = json.loads(found)["results"][0]
    assert top["path"].endswith("cafe.jpg") and top["text_terms"] == ["咖啡"]
    shown = run_cli("search", "budapest", "--no-rerank", "-k", "3", "--has-text", env=cli_env)
    assert 'text in photo: "Budapest"' in shown.stdout
    assert "plain_0" not in shown.stdout
