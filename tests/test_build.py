"""The build pipeline with fake models: what gets redone, reused, removed and refused."""

import os
import shutil

import pytest

from indexer.build import build_index
from indexer.errors import IndexMismatch, NoSuchFolder
from indexer.status import index_status
from testing.photos import scene, write_hostile_files, write_odd_but_valid, write_photos
from tests.fakes import fake_models


def build(photos, index, models=None, **options):
    models = models or fake_models()
    report = build_index([photos], index, models, batch_size=3, **options)
    return report, models


def consistent(index):
    status = index_status(index)
    assert status["vectors"] == status["indexed"]
    return status


def test_first_build_then_rerun_does_no_work(tmp_path):
    photos, index = tmp_path / "photos", tmp_path / "index"
    write_photos(photos, 7)
    report, _ = build(photos, index)
    assert (report.new, report.failed, report.model_calls) == (7, 0, 7)
    assert consistent(index)["indexed"] == 7

    again, models = build(photos, index)
    assert (again.new, again.unchanged, again.model_calls) == (0, 7, 0)
    assert models._captioner.images_seen == models._embedder.images_seen == 0


def test_changed_moved_copied_and_deleted_files(tmp_path):
    photos, index = tmp_path / "photos", tmp_path / "index"
    paths = write_photos(photos, 5)
    build(photos, index)
    scene(500).save(paths[0])  # changed content
    (photos / "sub").mkdir()
    os.rename(paths[1], photos / "sub" / "renamed.jpg")  # moved
    shutil.copy(paths[2], photos / "copy.jpg")  # a copy: same content, new path
    paths[3].unlink()  # deleted
    report, models = build(photos, index)
    assert (report.new, report.updated, report.moved, report.removed) == (1, 1, 1, 1)
    assert report.model_calls == 1  # only the changed file went through the models
    status = consistent(index)
    assert status["indexed"] == 5


def test_hostile_files_become_failed_rows_and_are_not_retried(tmp_path):
    photos, index = tmp_path / "photos", tmp_path / "index"
    write_photos(photos, 2)
    hostile = write_hostile_files(photos / "bad")
    report, _ = build(photos, index)
    assert report.new == 2
    failed = {os.path.basename(path): reason for path, reason in report.failures}
    assert set(failed) == {path.name for path in hostile.values()}
    assert failed["zero.jpg"] == "empty file (0 bytes)"
    assert failed["broken_link.jpg"] == "broken symlink"
    status = consistent(index)
    assert (status["indexed"], status["failed"]) == (2, len(hostile))

    again, models = build(photos, index)
    assert (again.failed, again.model_calls) == (0, 0)
    # a failed file that changes is retried, and indexed once it is good
    scene(1).save(hostile["random_bytes"], format="JPEG")
    fixed, _ = build(photos, index)
    assert (fixed.new, fixed.failed) == (1, 0)
    assert consistent(index)["failed"] == len(hostile) - 1


def test_awkward_but_valid_images_are_all_indexed(tmp_path):
    photos, index = tmp_path / "photos", tmp_path / "index"
    odd = write_odd_but_valid(photos)
    report, _ = build(photos, index)
    assert (report.new, report.failed) == (len(odd), 0), report.failures


def test_unreadable_file_fails_without_stopping_the_run(tmp_path, monkeypatch):
    photos, index = tmp_path / "photos", tmp_path / "index"
    paths = write_photos(photos, 3)
    real_open = open

    def refusing_open(path, *args, **kwargs):
        if os.fspath(path) == str(paths[1]):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("indexer.stages.open", refusing_open, raising=False)
    report, _ = build(photos, index)
    assert report.new == 2
    assert report.failures == [(str(paths[1]), "cannot read: Permission denied")]


def test_nothing_is_deleted_under_a_missing_or_unreadable_root(tmp_path, monkeypatch):
    photos, index = tmp_path / "photos", tmp_path / "index"
    write_photos(photos / "a", 2)
    write_photos(photos / "b", 2, start=10)
    build_index([photos / "a", photos / "b"], index, fake_models())
    shutil.rmtree(photos / "b")
    with pytest.raises(NoSuchFolder):
        build_index([photos / "a", photos / "b"], index, fake_models())
    assert consistent(index)["indexed"] == 4

    locked = str(photos / "a")
    real_scandir = os.scandir
    monkeypatch.setattr(
        "indexer.scan.os.scandir",
        lambda p: (
            (_ for _ in ()).throw(PermissionError(13, "Permission denied"))
            if os.fspath(p) == locked
            else real_scandir(p)
        ),
    )
    report = build_index([photos / "a"], index, fake_models())
    assert report.removed == 0
    assert consistent(index)["indexed"] == 4


def test_other_clip_model_is_refused_unless_rebuilding(tmp_path):
    photos, index = tmp_path / "photos", tmp_path / "index"
    write_photos(photos, 3)
    build(photos, index)
    with pytest.raises(IndexMismatch, match="--rebuild"):
        build(photos, index, fake_models("other-clip"))
    assert index_status(index)["models"]["clip_model"] == "fake-clip"
    report, _ = build(photos, index, fake_models("other-clip", dim=32), rebuild=True)
    assert report.new == 3
    status = consistent(index)
    assert status["models"] == {"caption_model": "fake-captioner", "clip_model": "other-clip",
                                "vector_dim": 32}  # fmt: skip


def test_same_model_name_with_other_vector_size_is_refused(tmp_path):
    photos, index = tmp_path / "photos", tmp_path / "index"
    write_photos(photos, 2)
    build(photos, index)
    scene(77).save(photos / "new.jpg")
    with pytest.raises(IndexMismatch, match="size"):
        build(photos, index, fake_models(dim=16))
    assert consistent(index)["indexed"] == 2


def test_a_root_that_empties_keeps_its_photos(tmp_path):
    photos, index = tmp_path / "photos", tmp_path / "index"
    write_photos(photos / "drive", 3)
    build_index([photos / "drive"], index, fake_models())
    for path in (photos / "drive").iterdir():  # the drive is unmounted: the folder is empty
        path.unlink()
    report = build_index([photos / "drive"], index, fake_models())
    assert report.removed == 0 and "empty but 3 indexed photos" in report.notices[0]
    assert consistent(index)["indexed"] == 3
    report = build_index([photos / "drive"], index, fake_models(), allow_empty=True)
    assert report.removed == 3 and consistent(index)["indexed"] == 0
