"""Duplicates and bursts: planted copies are grouped, bursts are kept apart, keepers chosen."""

import json
import os
import shutil

import pytest
from PIL import Image, ImageDraw

from curate.duplicates import Thresholds, find_duplicates, keeper_key, phash_distance
from indexer.build import build_index
from indexer.models import ModelSet
from indexer.store import IndexStore
from testing.photos import scene
from tests.conftest import run_cli
from tests.fakes import FakeCaptioner, FakeEmbedder, tiny_clip_models

# builds models or indexes, runs the CLI or a server: seconds to minutes
pytestmark = pytest.mark.slow

DAY = 86_400
EPOCH = 1_600_000_000  # 2020-09-13


def exif_taken(when: str) -> Image.Exif:
    """EXIF with DateTimeOriginal ("2021:07:04 18:30:00")."""
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = when
    return exif


def panned(image: Image.Image, dx: int, dy: int) -> Image.Image:
    """The camera moved: the picture shifted, the edge filled with the corner colour."""
    out = Image.new("RGB", image.size, image.getpixel((0, 0)))
    out.paste(image, (dx, dy))
    return out


def walked_in(image: Image.Image) -> Image.Image:
    """Someone walked into the frame."""
    out = image.copy()
    ImageDraw.Draw(out).ellipse((420, 250, 570, 430), fill=(250, 250, 250))
    return out


def plant_library(photos, stranger_in_the_burst_minute: bool = True) -> dict[str, str]:
    """Photos with known duplicates and bursts: name -> path. Seeds are chosen so that the
    fake 4x4-thumbnail embedder tells the unrelated pictures apart."""
    for folder in ("trip", "phone", "backup", "misc"):
        (photos / folder).mkdir(parents=True, exist_ok=True)
    paths = {}

    def save(name, relative, image, when=None, **options):
        path = photos / relative
        image.save(path, **options)
        if when is not None:
            os.utime(path, (when, when))
        paths[name] = str(path)

    save("sea", "trip/sea.jpg", scene(1), EPOCH, quality=90)
    save("sea_small", "phone/sea_small.jpg", scene(1).resize((320, 240)), EPOCH + 3 * DAY,
         quality=60)  # fmt: skip
    save("cake", "trip/cake.jpg", scene(4), EPOCH + 10 * DAY, quality=90)
    shutil.copy(paths["cake"], photos / "backup/cake.jpg")  # a copy: same bytes, newer mtime
    paths["cake_copy"] = str(photos / "backup/cake.jpg")

    base = scene(3)
    save("burst_1", "trip/burst_1.jpg", base, exif=exif_taken("2021:07:04 18:30:00"))
    save("burst_2", "trip/burst_2.jpg", panned(base, 30, 15),
         exif=exif_taken("2021:07:04 18:30:02"))  # fmt: skip
    save("burst_3", "trip/burst_3.jpg", walked_in(base).resize((800, 600)),
         exif=exif_taken("2021:07:04 18:30:05"))  # fmt: skip
    shutil.copy(paths["burst_1"], photos / "backup/burst_1.jpg")
    paths["burst_1_copy"] = str(photos / "backup/burst_1.jpg")
    if stranger_in_the_burst_minute:  # same minute, another picture: not part of the burst
        save("stranger", "trip/stranger.jpg", scene(22), exif=exif_taken("2021:07:04 18:30:20"))
    for n, seed in enumerate((30, 31, 32)):
        save(f"other_{n}", f"misc/other_{n}.jpg", scene(seed), EPOCH + (100 + 10 * n) * DAY)
    return paths


@pytest.fixture
def library(tmp_path):
    paths = plant_library(tmp_path / "photos")
    models = ModelSet("fake-captioner", "fake-clip", FakeCaptioner, FakeEmbedder)
    build_index([tmp_path / "photos"], tmp_path / "index", models)
    store = IndexStore.open(tmp_path / "index")
    yield store, paths
    store.close()


def by_kind(report, kind):
    return [group for group in report.groups if group.kind == kind]


def test_copies_are_grouped_with_a_keeper_and_bursts_stay_apart(library):
    store, paths = library
    progress = []
    report = find_duplicates(store, on_progress=progress.append)
    assert report.photos == len(paths)
    exact = [(g.keep.path, {p.path for p in g.members}) for g in by_kind(report, "exact")]
    burst_keeper = paths["burst_1"]  # same picture and EXIF date: the older file
    assert sorted(exact) == sorted([
        (paths["cake"], {paths["cake"], paths["cake_copy"]}),  # the older file is kept
        (burst_keeper, {paths["burst_1"], paths["burst_1_copy"]}),
    ])  # fmt: skip
    (near,) = by_kind(report, "near")
    assert near.keep.path == paths["sea"]  # the larger picture wins over the older-looking one
    assert [p.path for p in near.members] == [paths["sea"], paths["sea_small"]]
    (burst,) = by_kind(report, "burst")
    assert burst.keep.path == paths["burst_3"]  # largest resolution
    # the exact pair takes part once, through its keeper; the stranger is not in the burst
    assert {p.path for p in burst.members} == {paths["burst_3"], burst_keeper, paths["burst_2"]}
    assert [g.kind for g in report.groups] == ["exact", "exact", "near", "burst"]
    grouped = {p.path for g in report.groups for p in g.members}
    assert not grouped & {paths["stranger"], paths["other_0"], paths["other_1"]}
    assert progress[-1].done == progress[-1].total == len(paths) - 2  # distinct contents
    shape = report.as_dict()
    assert set(shape) == {"groups"} and shape["groups"][2] == {
        "kind": "near",
        "keep": paths["sea"],
        "members": [paths["sea"], paths["sea_small"]],
    }


def test_thresholds_decide(library):
    store, paths = library
    strict = find_duplicates(store, Thresholds(near_max_phash_bits=0, near_min_clip=1.01))
    assert not by_kind(strict, "near") and len(by_kind(strict, "exact")) == 2
    no_bursts = find_duplicates(store, Thresholds(burst_max_seconds=1))
    assert not by_kind(no_bursts, "burst")
    wide = find_duplicates(store, Thresholds(burst_max_seconds=60, burst_min_clip=0.0))
    (burst,) = by_kind(wide, "burst")
    assert paths["stranger"] in {p.path for p in burst.members}  # CLIP's bound kept it out


def test_photos_without_a_perceptual_hash_only_group_as_exact(library):
    store, paths = library
    with store.db.atomic():
        store.db.execute("UPDATE images SET phash = NULL")
    report = find_duplicates(store)
    assert [g.kind for g in report.groups] == ["exact", "exact"]


def test_small_and_empty_indexes(tmp_path):
    (tmp_path / "one").mkdir()
    scene(1).save(tmp_path / "one" / "a.jpg")
    models = ModelSet("c", "fake-clip", FakeCaptioner, FakeEmbedder)
    build_index([tmp_path / "one"], tmp_path / "index", models)
    store = IndexStore.open(tmp_path / "index")
    assert find_duplicates(store).groups == []
    store.close()


def test_helpers():
    assert phash_distance("ffffffffffffffff", "0000000000000000") == 64
    assert phash_distance("00000000000000f0", "0000000000000000") == 4
    assert phash_distance(None, "0000000000000000") is None
    from curate.duplicates import Photo

    def photo(path, w, h, date, mtime=0):
        return Photo(0, path, "h", None, w, h, date, None, mtime)

    photos = [photo("b", 10, 10, "2020", 5), photo("a", 10, 10, "2021"), photo("c", 30, 5, "2022"),
              photo("z", 5, 5, None), photo("y", 40, 40, None), photo("x", 10, 10, "2020", 9),
              photo("w", 10, 10, "2020", 9)]  # fmt: skip
    order = [p.path for p in sorted(photos, key=keeper_key)]
    assert order == ["y", "c", "b", "w", "x", "a", "z"]  # pixels, date, file age, path


def test_cli_json_and_text(tmp_path, cli_env, tiny_clip):
    paths = plant_library(tmp_path / "photos", stranger_in_the_burst_minute=False)
    build_index([tmp_path / "photos"], cli_env["INDEXER_HOME"], tiny_clip_models(tiny_clip))
    answer = json.loads(run_cli("duplicates", "--json", env=cli_env).stdout)
    groups = {(g["kind"], g["keep"]): g["members"] for g in answer["groups"]}
    assert all(set(g) == {"kind", "keep", "members"} for g in answer["groups"])
    assert groups[("exact", paths["cake"])] == [paths["cake"], paths["cake_copy"]]
    assert groups[("near", paths["sea"])] == [paths["sea"], paths["sea_small"]]
    bursts = [g for g in answer["groups"] if g["kind"] == "burst"]
    assert len(bursts) == 1 and bursts[0]["keep"] == paths["burst_3"]
    assert paths["burst_2"] in bursts[0]["members"] and len(bursts[0]["members"]) == 3
    text = run_cli("duplicates", env=cli_env).stdout.splitlines()
    assert text[-1] == f"4 groups (2 exact, 1 near, 1 burst) among {len(paths)} photos"
    assert text[0].startswith("exact  keep ")

    missing = run_cli("duplicates", "--index", str(tmp_path / "none"), env=cli_env, check=False)
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1
    assert "no index" in missing.stderr and "Traceback" not in missing.stderr
