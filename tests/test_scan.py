import os

import pytest

from indexer.errors import NoSuchFolder
from indexer.scan import scan
from testing.photos import write_hostile_files, write_photos


def test_finds_images_recursively_and_ignores_other_files(tmp_path):
    write_photos(tmp_path / "a" / "b", 2)
    (tmp_path / "a" / "readme.txt").write_text("not a photo")
    (tmp_path / "UPPER.JPG").write_bytes(b"x")
    found = sorted(os.path.relpath(f.path, tmp_path) for f in scan([tmp_path]).files)
    assert found == ["UPPER.JPG", "a/b/photo_000.jpg", "a/b/photo_001.jpg"]


def test_symlink_loops_end_and_broken_links_are_problems(tmp_path):
    write_hostile_files(tmp_path)
    result = scan([tmp_path])
    problems = {os.path.basename(p.path): p.reason for p in result.problems}
    assert problems == {"broken_link.jpg": "broken symlink", "self_loop.jpg": "symlink loop"}
    paths = [f.path for f in result.files]
    assert len(paths) == len(set(paths))
    assert not any("loop_dir" in path for path in paths)


def test_missing_root_is_an_error(tmp_path):
    with pytest.raises(NoSuchFolder, match="does not exist"):
        scan([tmp_path / "nope"])
    (tmp_path / "file.jpg").write_bytes(b"")
    with pytest.raises(NoSuchFolder, match="not a folder"):
        scan([tmp_path / "file.jpg"])


def test_unreadable_folder_is_a_problem_and_not_covered(tmp_path, monkeypatch):
    write_photos(tmp_path / "ok", 1)
    write_photos(tmp_path / "locked", 1)
    locked = str(tmp_path / "locked")
    real_scandir = os.scandir

    def refusing_scandir(path):
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr("indexer.scan.os.scandir", refusing_scandir)
    result = scan([tmp_path])
    assert [p.reason for p in result.problems] == ["folder unreadable: Permission denied"]
    assert result.incomplete_dirs == [locked]
    assert not result.covers(os.path.join(locked, "photo_000.jpg"))
    assert result.covers(str(tmp_path / "ok" / "photo_000.jpg"))
    assert not result.covers("/elsewhere/photo.jpg")
