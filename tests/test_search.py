"""Search end to end: library with fakes for the semantics, CLI with tiny real models."""

import json

import numpy as np
import pytest
from PIL import Image

from indexer.build import build_index
from indexer.errors import IndexerError
from indexer.models import ModelSet
from search.engine import EmptyQuery, SearchEngine
from search.rerank import Judgement
from testing.photos import scene, write_photos
from tests.conftest import run_cli
from tests.fakes import FakeEmbedder

# builds models or indexes, runs the CLI or a server: seconds to minutes
pytestmark = pytest.mark.slow


class SizeCaptioner:
    """Says "a plate of donuts" for 333x222 pictures, something dull otherwise."""

    name = "size-captioner"

    def caption(self, images):
        return ["a plate of donuts" if im.size == (333, 222) else "a plain scene" for im in images]


DONUTS_PINK = (250, 10, 200)


class ScriptedReranker:
    """Judges by a function of whether the picture is the (plain pink) donuts one; it
    records the sizes of the pictures it was given."""

    name = "scripted"
    input_size = 480  # given the build's prepared squares

    def __init__(self, judge_donuts):
        self.judge_donuts, self.calls, self.sizes = judge_donuts, 0, []

    def judge(self, images, text):
        self.calls += 1
        self.sizes += [image.size for image in images]
        return [self.judge_donuts(_is_donuts(image)) for image in images]


def _is_donuts(image) -> bool:
    mean = np.asarray(image.convert("RGB"), dtype=np.float32).reshape(-1, 3).mean(axis=0)
    return bool(np.abs(mean - DONUTS_PINK).max() < 12)


@pytest.fixture
def index(tmp_path):
    photos = tmp_path / "photos"
    write_photos(photos, 20)
    Image.new("RGB", (333, 222), DONUTS_PINK).save(photos / "donuts.jpg")
    embedder = FakeEmbedder()
    models = ModelSet("size-captioner", "fake-clip", SizeCaptioner, lambda: embedder)
    build_index([photos], tmp_path / "index", models)
    return tmp_path / "index", embedder


def engine(index, reranker=None):
    folder, embedder = index
    return SearchEngine(folder, load_embedder=lambda spec: embedder,
                        load_reranker=(lambda: reranker) if reranker else None)  # fmt: skip


def test_caption_words_find_a_photo_clip_does_not(index):
    result = engine(index).search("donuts", k=3, rerank=False)
    assert result.hits[0].path.endswith("donuts.jpg")
    assert result.hits[0].caption_rank == 1
    assert "caption words rank 1" in result.hits[0].why
    assert len(result.hits) == 3 and not result.reranked


def test_rerank_orders_by_p_yes_and_hides_confident_noes(index):
    def by_width(donuts):
        return Judgement(0.9, 0.05, 0.05) if donuts else Judgement(0.02, 0.95, 0.03)

    result = engine(index, ScriptedReranker(by_width)).search("donuts", k=5, rerank_top=5)
    assert [hit.path.endswith("donuts.jpg") for hit in result.hits] == [True]
    assert result.rejected == 4 and result.hits[0].verdict == "yes"
    shown = engine(index, ScriptedReranker(by_width)).search(
        "donuts", k=5, rerank_top=5, show_rejected=True)  # fmt: skip
    assert len(shown.hits) == 5
    assert [hit.p_yes for hit in shown.hits] == sorted((h.p_yes for h in shown.hits), reverse=True)


def test_rerank_reads_the_prepared_square_not_the_original(index):
    folder, _ = index
    donuts = folder.parent / "photos" / "donuts.jpg"
    donuts.unlink()  # the original is gone: only the build's prepared input is left

    def by_donuts(donuts):
        return Judgement(0.9, 0.05, 0.05) if donuts else Judgement(0.02, 0.95, 0.03)

    reranker = ScriptedReranker(by_donuts)
    result = engine(index, reranker).search("donuts", k=5, rerank_top=5)
    assert [hit.path.endswith("donuts.jpg") for hit in result.hits] == [True]
    assert set(reranker.sizes) == {(480, 480)}


def test_retrieve_then_rerank_is_search(index):
    reranker = ScriptedReranker(lambda donuts: Judgement(0.9 if donuts else 0.3, 0.05, 0.05))
    searcher = engine(index, reranker)
    found = searcher.retrieve("donuts", k=5, rerank_top=8)
    assert reranker.calls == 0 and len(found.hits) == 8 and not found.reranked
    assert all("not reranked" in hit.why for hit in found.hits)
    both = searcher.rerank(found, k=5, rerank_top=8)
    whole = searcher.search("donuts", k=5, rerank_top=8)
    assert [h.as_dict() for h in both.hits] == [h.as_dict() for h in whole.hits]
    assert all(hit.verdict is None for hit in found.hits)  # `found` is left as it was


def test_nothing_matches_is_an_honest_empty_answer(index):
    reranker = ScriptedReranker(lambda width: Judgement(0.01, 0.97, 0.02))
    result = engine(index, reranker).search("a giraffe", k=10)
    assert result.hits == [] and result.rejected == 10 and reranker.calls >= 1


def test_models_load_once_per_engine(index):
    reranker = ScriptedReranker(lambda width: Judgement(0.5, 0.2, 0.3))
    loads = []
    folder, embedder = index
    searcher = SearchEngine(folder, load_embedder=lambda spec: loads.append(spec) or embedder,
                            load_reranker=lambda: loads.append("rerank") or reranker)  # fmt: skip
    for query in ("one", "two", "three"):
        searcher.search(query, k=2)
    assert loads == ["fake-clip", "rerank"]


def test_empty_query_and_empty_or_missing_index(index, tmp_path):
    with pytest.raises(EmptyQuery):
        engine(index).search("   ")
    with pytest.raises(IndexerError, match="no index"):
        SearchEngine(tmp_path / "nowhere")
    (tmp_path / "empty_photos").mkdir()
    embedder = FakeEmbedder()
    models = ModelSet("c", "fake-clip", SizeCaptioner, lambda: embedder)
    build_index([tmp_path / "empty_photos"], tmp_path / "empty", models)
    with pytest.raises(IndexerError, match="empty"):
        SearchEngine(tmp_path / "empty")


@pytest.fixture
def built(tmp_path, cli_env, tiny_ofa_entailment):
    photos = tmp_path / "photos"
    write_photos(photos, 12)
    run_cli("build", str(photos), env=cli_env)
    return dict(cli_env, INDEXER_RERANK_MODEL=tiny_ofa_entailment)


def test_cli_json_with_rerank(built):
    done = run_cli("search", "a dog running on the beach", "-k", "8", "--rerank-top", "5",
                   "--show-rejected", "--json", env=built)  # fmt: skip
    answer = json.loads(done.stdout)
    assert answer["query"] == "a dog running on the beach" and answer["reranked"]
    results = answer["results"]
    assert len(results) == 8
    for hit in results:
        assert {"path", "caption", "score", "clip_score", "why"} <= set(hit)
    judged = [hit for hit in results if "verdict" in hit]
    assert len(judged) == 5 and results[:5] == judged
    assert all(hit["verdict"] in ("yes", "no", "maybe") for hit in judged)
    p_yes = [hit["p_yes"] for hit in judged]
    assert p_yes == sorted(p_yes, reverse=True)
    assert [hit["score"] for hit in judged] == p_yes


def test_cli_without_rerank_and_text_output(built):
    answer = json.loads(run_cli("search", "red car", "--no-rerank", "-k", "3", "--json",
                                env=built).stdout)  # fmt: skip
    assert not answer["reranked"] and len(answer["results"]) == 3
    assert all("verdict" not in hit for hit in answer["results"])
    clip = [hit["clip_score"] for hit in answer["results"]]
    assert clip == sorted(clip, reverse=True)  # no caption matches: CLIP order
    text = run_cli("search", "red car", "--no-rerank", "-k", "2", env=built).stdout
    assert text.splitlines()[0].startswith("  1. ") and "not reranked" in text


def test_cli_errors_are_one_line(built, tmp_path):
    for args, env, expected in [
        (["search", "  "], built, "query is empty"),
        (["search", "cat", "--index", str(tmp_path / "none")], built, "no index"),
        (["search", "cat", "--rerank-model", str(tmp_path / "none")], built, "rerank model"),
    ]:
        done = run_cli(*args, env=env, check=False)
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], done.stderr


def test_filters_restrict_both_rankings_and_sort_by_date(tmp_path):
    import os

    from PIL import Image

    from indexer.store import IndexStore
    from search.filters import Filters

    photos = tmp_path / "photos"
    write_photos(photos / "trip", 3)
    write_photos(photos / "home", 3, start=10)
    Image.new("RGB", (200, 400), (9, 9, 9)).save(photos / "home" / "tall.jpg")
    scene(3, (333, 222)).save(photos / "trip" / "donuts.jpg")
    for n, path in enumerate(sorted((photos / "trip").iterdir())):
        os.utime(path, ns=(0, (1_600_000_000 + n * 86_400 * 40) * 10**9))
    embedder = FakeEmbedder()
    models = ModelSet("size-captioner", "fake-clip", SizeCaptioner, lambda: embedder)
    build_index([photos], tmp_path / "index", models)
    searcher = engine((tmp_path / "index", embedder))

    def paths(result):
        return [os.path.relpath(hit.path, photos) for hit in result.hits]

    in_trip, in_home = Filters(folder=str(photos / "trip")), Filters(folder=str(photos / "home"))
    trip = searcher.search("donuts", k=10, rerank=False, filters=in_trip)
    assert len(trip.hits) == 4 and all(p.startswith("trip/") for p in paths(trip))
    home = searcher.search("donuts", k=10, rerank=False, filters=in_home)
    assert "trip/donuts.jpg" not in paths(home)
    portrait = searcher.search("x", rerank=False, filters=Filters(orientation="portrait"))
    assert paths(portrait) == ["home/tall.jpg"]
    old_trip = Filters(folder=str(photos / "trip"), taken_to="2020-12-31")
    dated = searcher.search("x", k=20, rerank=False, sort="date", filters=old_trip)
    assert [hit.date for hit in dated.hits] == sorted((h.date for h in dated.hits), reverse=True)
    assert all(hit.date <= "2020-12-31T23:59:59" for hit in dated.hits) and len(dated.hits) == 3

    store = IndexStore.open(tmp_path / "index")
    beach_id = trip.hits[0].id
    store.db["tags"].insert({"image_id": beach_id, "label": "beach", "score": 0.9, "model": "m"})
    tagged = searcher.search("x", rerank=False, filters=Filters(tags=("beach",)))
    assert [hit.id for hit in tagged.hits] == [beach_id]
    store.close()


def test_more_like_this_and_search_by_example(index):
    searcher = engine(index)
    first = searcher.search("donuts", k=1, rerank=False).hits[0]
    like = searcher.similar(image_id=first.id, k=4)
    assert len(like.hits) == 4 and first.id not in [hit.id for hit in like.hits]
    scores = [hit.score for hit in like.hits]
    assert scores == sorted(scores, reverse=True)
    from PIL import Image

    uploaded = searcher.similar(picture=Image.open(first.path), k=1)
    assert uploaded.hits[0].id == first.id  # the same picture is its own best match
    with pytest.raises(IndexerError, match="no photo"):
        searcher.similar(image_id=99999)


def test_a_search_during_the_first_build_says_a_build_is_running(tmp_path, cli_env):
    from indexer.lock import WriterLock
    from indexer.store import IndexStore

    index = tmp_path / "index"
    with WriterLock(index).held():  # a first build, before its first batch is committed
        IndexStore.open(index, create=True).close()
        done = run_cli("search", "a red car", "--index", str(index), env=cli_env, check=False)
        with pytest.raises(IndexerError, match="is running .* nothing is indexed yet"):
            SearchEngine(index)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert "build of index" in lines[0] and "nothing is indexed yet" in lines[0]
    assert "run `indexer build" not in lines[0]
    with pytest.raises(IndexerError, match="is empty; run `indexer build"):
        SearchEngine(index)  # no build running any more: the plain message


def test_common_words_rank_captions_with_all_words_then_the_rare_ones(index, monkeypatch):
    import search.retrieve as retrieve
    from indexer.store import IndexStore

    monkeypatch.setattr(retrieve, "COMMON_WORD", 3)  # "plain" and "scene" are in 20 captions
    store = IndexStore.open(index[0])
    try:
        donuts = retrieve.caption_candidates(store, "plain donuts", 5)
        assert len(donuts) == 1 and store.image(donuts[0][0])["caption"] == "a plate of donuts"
        plain = retrieve.caption_candidates(store, "plain scene", 5)
        assert len(plain) == 5 and {score for _, score in plain} == {0.0}
        assert all(store.image(i)["caption"] == "a plain scene" for i, _ in plain)
    finally:
        store.close()
