"""A build's passes: every photo searchable by CLIP first, captions after (resumable), and
the reranker's prepared inputs kept beside the index and removed with their photos."""

import shutil

import pytest

from indexer.build import build_index
from indexer.caption_pass import caption_pending
from indexer.decode_pool import DecodePool
from indexer.model_inputs import input_path
from indexer.status import index_status
from indexer.store import IndexStore
from search.engine import SearchEngine
from testing.photos import scene, write_photos
from tests.conftest import run_cli
from tests.fakes import fake_models

# builds models or indexes, runs the CLI or a server: seconds to minutes
pytestmark = pytest.mark.slow


def build(photos, index, models=None, **options):
    models = models or fake_models()
    return build_index([photos], index, models, batch_size=3, **options), models


def captions(index) -> dict[str, str | None]:
    store = IndexStore.open(index)
    try:
        return {row["path"]: row["caption"] for row in store.db.query("SELECT * FROM images")}
    finally:
        store.close()


def test_every_photo_is_searchable_before_the_first_caption(tmp_path):
    photos, index = tmp_path / "photos", tmp_path / "index"
    write_photos(photos, 7)
    seen_at_captions_start = []

    def on_progress(progress):
        if progress.phase == "captions" and not seen_at_captions_start:
            seen_at_captions_start.append(index_status(index)["passes"])

    report, models = build(photos, index, on_progress=on_progress)
    assert seen_at_captions_start == [{"clip": {"done": 7},
                                       "text": {"done": 7, "with_text": 0, "pending": 0},
                                       "captions": {"done": 0, "pending": 7}}]  # fmt: skip
    assert (report.new, report.captioned, report.captions_pending) == (7, 7, 0)
    assert all(captions(index).values()) and models._captioner.images_seen == 7
    assert index_status(index)["passes"]["captions"] == {"done": 7, "pending": 0}


def test_never_then_later_captions_without_embedding_again(tmp_path):
    photos, index = tmp_path / "photos", tmp_path / "index"
    write_photos(photos, 5)
    report, models = build(photos, index, captions="never")
    assert (report.captioned, report.captions_pending) == (0, 5)
    assert set(captions(index).values()) == {None} and models._captioner.images_seen == 0

    engine = SearchEngine(index, load_embedder=lambda spec: models._embedder)
    found = engine.search("anything", k=3, rerank=False)
    assert len(found.hits) == 3 and "no caption yet" in found.hits[0].why
    assert any("5 of 5 photos still wait for captions" in n for n in found.notices)
    engine.close()

    again, models = build(photos, index, captions="later")
    assert (again.unchanged, again.model_calls, again.captioned) == (5, 0, 5)
    assert models._embedder.images_seen == 0 and all(captions(index).values())


def test_a_stopped_captions_pass_goes_on_next_time_and_copies_share_one(tmp_path):
    photos, index = tmp_path / "photos", tmp_path / "index"
    paths = write_photos(photos, 7)
    shutil.copy(paths[0], photos / "copy.jpg")
    build(photos, index, captions="never")
    models = fake_models()
    real_caption, calls = models._captioner.caption, []

    def stop_on_second_batch(images):
        calls.append(len(images))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_caption(images)

    models._captioner.caption = stop_on_second_batch
    with pytest.raises(KeyboardInterrupt):
        build(photos, index, models)
    # one batch of 3 contents was committed: 4 photos when the copy's content was one
    done = sum(1 for caption in captions(index).values() if caption)
    assert done in (3, 4) and index_status(index)["passes"]["captions"]["pending"] == 8 - done

    report, models = build(photos, index)
    assert report.captioned == 8 - done and all(captions(index).values())
    assert models._captioner.images_seen == 7 - 3  # 7 contents, 3 already captioned
    texts = captions(index)
    assert texts[str(photos / "copy.jpg")] == texts[str(paths[0])]


def test_a_file_changed_between_passes_is_left_for_the_next_build(tmp_path):
    photos, index = tmp_path / "photos", tmp_path / "index"
    paths = write_photos(photos, 3)
    _, models = build(photos, index, captions="never")
    scene(99).save(paths[1])  # its CLIP vector describes the old content
    store = IndexStore.open(index)
    with DecodePool(workers=1) as pool:
        done = caption_pending(store, models.captioner(), "fake-captioner", pool, batch_size=2)
    store.close()
    assert (done.captioned, done.skipped) == (2, 1)
    assert captions(index)[str(paths[1])] is None
    report, _ = build(photos, index)
    assert (report.updated, report.captions_pending) == (1, 0)


def test_prepared_inputs_are_kept_per_content_and_go_with_their_photos(tmp_path):
    photos, index = tmp_path / "photos", tmp_path / "index"
    paths = write_photos(photos, 3)
    shutil.copy(paths[0], photos / "copy.jpg")
    build(photos, index)
    store = IndexStore.open(index)
    hashes = {row["path"]: row["hash"] for row in store.db.query("SELECT path, hash FROM images")}
    store.close()
    inputs = {path: input_path(index, content) for path, content in hashes.items()}
    assert all(file.is_file() for file in inputs.values()) and len(set(inputs.values())) == 3

    paths[0].unlink()  # its copy still holds the content
    scene(77).save(paths[1])  # new content at the same path
    paths[2].unlink()
    build(photos, index)
    assert inputs[str(photos / "copy.jpg")].is_file()
    assert not inputs[str(paths[1])].is_file() and not inputs[str(paths[2])].is_file()


def test_cli_captions_switch_and_status(tmp_path, cli_env):
    photos = tmp_path / "photos"
    write_photos(photos, 2)
    done = run_cli("build", str(photos), "--captions", "never", "--json", env=cli_env)
    assert '"captions_pending": 2' in done.stdout
    shown = run_cli("status", env=cli_env).stdout
    assert "captioned: 0 of 2 (2 waiting; `indexer build` goes on)" in shown
    bad = run_cli("build", str(photos), env=dict(cli_env, INDEXER_CAPTIONS="soon"), check=False)
    assert bad.returncode == 1 and "captions must be one of later, now, never" in bad.stderr
    run_cli("build", str(photos), env=cli_env)
    assert "captioned: 2 of 2\n" in run_cli("status", env=cli_env).stdout
