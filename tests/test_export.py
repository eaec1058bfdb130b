"""Export: exactly the selected files reach the target; originals are never touched."""

import csv
import hashlib
import json
import os

import pytest

from curate.export import (
    export_files,
    select_by_query,
    select_by_tags,
    select_duplicates,
    selection_csv,
    write_selection_csv,
)
from indexer.build import build_index
from indexer.errors import IndexerError
from indexer.models import ModelSet
from indexer.store import IndexStore
from search.engine import SearchEngine
from tests.conftest import run_cli
from tests.fakes import FakeCaptioner, FakeEmbedder, tiny_clip_models
from tests.test_duplicates import plant_library

# builds models or indexes, runs the CLI or a server: seconds to minutes
pytestmark = pytest.mark.slow


def snapshot(folder):
    """Every file under `folder`: path -> (content digest, mtime_ns, inode)."""
    found = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            info = os.stat(path)
            digest = hashlib.sha256(open(path, "rb").read()).hexdigest()  # noqa: SIM115
            found[path] = (digest, info.st_mtime_ns, info.st_ino)
    return found


def tag(store, label, paths):
    for path in paths:
        (image_id,) = store.db.execute("SELECT id FROM images WHERE path = ?", [path]).fetchone()
        store.db["tags"].insert({"image_id": image_id, "label": label, "score": 0.9, "model": "m"})


@pytest.fixture
def library(tmp_path):
    paths = plant_library(tmp_path / "photos")
    embedder = FakeEmbedder()
    models = ModelSet("fake-captioner", "fake-clip", FakeCaptioner, lambda: embedder)
    build_index([tmp_path / "photos"], tmp_path / "index", models)
    store = IndexStore.open(tmp_path / "index")
    before = snapshot(tmp_path / "photos")
    yield store, paths, embedder
    assert snapshot(tmp_path / "photos") == before  # every test: the originals are untouched
    store.close()


def test_tag_selection_copies_exactly_those_files_and_never_overwrites(library, tmp_path):
    store, paths, _ = library
    chosen = [paths["sea"], paths["cake"], paths["cake_copy"]]  # two share a name
    tag(store, "holiday", chosen)
    selection = select_by_tags(store, ["holiday"])
    assert sorted(row["path"] for row in selection.rows) == sorted(chosen)
    target = tmp_path / "out"
    progress = []
    result = export_files(selection, target, store=store, on_progress=progress.append)
    assert sorted(os.listdir(target)) == ["cake-1.jpg", "cake.jpg", "sea.jpg"]
    assert result.skipped == [] and progress[-1].done == progress[-1].total == 3
    copies = snapshot(target)
    originals = snapshot(tmp_path / "photos")
    for source, destination in result.exported:
        assert copies[destination][:2] == originals[source][:2]  # same bytes and times

    (target / "sea.jpg").write_bytes(b"the user's own file")
    again = export_files(selection, target, mode="symlink")
    assert (target / "sea.jpg").read_bytes() == b"the user's own file"
    assert len(os.listdir(target)) == 6 and len(again.exported) == 3
    for source, destination in again.exported:
        assert os.readlink(destination) == source
    linked = export_files(selection, tmp_path / "hard", mode="hardlink")
    for source, destination in linked.exported:
        assert os.stat(destination).st_ino == os.stat(source).st_ino
    assert "exported_as" in selection_csv(selection, linked).splitlines()[0]


def test_duplicates_selection_and_csv(library, tmp_path):
    store, paths, _ = library
    selection = select_duplicates(store)
    rows = [(row["group"], row["kind"], row["keep"], row["path"]) for row in selection.rows]
    groups = {row[0] for row in rows}
    assert len(groups) == 3 and {row[1] for row in rows} == {"exact", "near"}  # no bursts
    assert sum(row[2] for row in rows) == 3  # one keeper per group
    assert (3, "near", True, paths["sea"]) in rows and (
        3,
        "near",
        False,
        paths["sea_small"],
    ) in rows
    assert paths["burst_2"] not in {row[3] for row in rows}
    written = write_selection_csv(selection, tmp_path / "dups.csv", store)
    with open(written, newline="", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert list(table[0]) == ["group", "kind", "keep", "path", "caption", "width", "height", "date"]
    assert [(int(r["group"]), r["kind"], r["keep"] == "true", r["path"]) for r in table] == rows
    result = export_files(selection, tmp_path / "review")
    assert "003-keep-sea.jpg" in os.listdir(tmp_path / "review")
    assert len(result.exported) == len(rows)


def test_query_selection_missing_files_and_refusals(library, tmp_path):
    store, paths, embedder = library
    engine = SearchEngine(store.index_dir, load_embedder=lambda spec: embedder)
    selection = select_by_query(engine, "the sea", k=4, rerank=False)
    engine.close()
    assert [row["rank"] for row in selection.rows] == [1, 2, 3, 4]
    assert selection_csv(selection).splitlines()[0] == (
        "rank,path,caption,width,height,date,score,verdict,p_yes"
    )
    gone = selection.rows[0]["path"]
    moved = gone + ".moved"
    os.rename(gone, moved)  # gone since the build
    try:
        result = export_files(selection, tmp_path / "q")
    finally:
        os.rename(moved, gone)
    assert [path for path, _ in result.skipped] == [gone]
    assert "not found" in result.skipped[0][1] and len(result.exported) == 3

    with pytest.raises(ValueError, match="input files"):
        write_selection_csv(selection, selection.rows[1]["path"], store)
    with pytest.raises(ValueError, match="indexed photo"):
        write_selection_csv(selection, paths["other_0"], store)
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(IndexerError, match="not a folder"):
        export_files(selection, tmp_path / "a_file")
    with pytest.raises(ValueError, match="mode"):
        export_files(selection, tmp_path / "q", mode="move")


def test_cli_exports(tmp_path, cli_env, tiny_clip):
    paths = plant_library(tmp_path / "photos", stranger_in_the_burst_minute=False)
    build_index([tmp_path / "photos"], cli_env["INDEXER_HOME"], tiny_clip_models(tiny_clip))
    store = IndexStore.open(cli_env["INDEXER_HOME"])
    tag(store, "beach", [paths["sea"], paths["other_1"]])
    store.close()
    before = snapshot(tmp_path / "photos")

    done = run_cli("export", "--tag", "beach", "--to", str(tmp_path / "out"), "--json",
                   env=cli_env)  # fmt: skip
    result = json.loads(done.stdout)
    assert set(result) == {"selected", "exported", "skipped", "csv", "notices"}
    assert result["selected"] == 2 and result["skipped"] == [] and result["csv"] is None
    assert {item["path"] for item in result["exported"]} == {paths["sea"], paths["other_1"]}
    assert sorted(os.listdir(tmp_path / "out")) == ["other_1.jpg", "sea.jpg"]

    text = run_cli("export", "--duplicates", "--csv", str(tmp_path / "d.csv"), env=cli_env)
    assert text.stdout == f"wrote 6 rows to {tmp_path / 'd.csv'}\n"  # 3 pairs, no burst
    with open(tmp_path / "d.csv", newline="", encoding="utf-8") as handle:
        assert {row["path"] for row in csv.DictReader(handle)} == {
            paths["cake"], paths["cake_copy"], paths["sea"], paths["sea_small"],
            paths["burst_1"], paths["burst_1_copy"]}  # fmt: skip

    query = run_cli("export", "a photo", "--no-rerank", "-k", "3", "--to", str(tmp_path / "q"),
                    "--csv", str(tmp_path / "q.csv"), env=cli_env)  # fmt: skip
    assert query.stdout.splitlines()[0] == f"exported 3 of 3 photos to {tmp_path / 'q'} (copy)"
    assert len(os.listdir(tmp_path / "q")) == 3
    assert snapshot(tmp_path / "photos") == before

    for args, expected in [
        (["--to", str(tmp_path / "x")], "say what to export"),
        (["--tag", "beach"], "say where to"),
        (["cats", "--duplicates", "--csv", "x.csv"], "cannot be combined"),
        (["--tag", "sunset", "--csv", str(tmp_path / "x.csv")], "no photo is tagged 'sunset'"),
        (["--tag", "beach", "--csv", paths["sea"]], "indexed photo"),
    ]:
        bad = run_cli("export", *args, env=cli_env, check=False)
        assert bad.returncode == 1 and "Traceback" not in bad.stderr
        assert bad.stderr.count("\n") == 1 and expected in bad.stderr, bad.stderr
    usage = run_cli("export", "--tag", "beach", "--to", paths["sea"], env=cli_env, check=False)
    assert usage.returncode == 2 and "is a file" in usage.stderr and "Traceback" not in usage.stderr
    assert snapshot(tmp_path / "photos") == before


def test_every_curation_command_has_an_example():
    from curate.cli import audit, duplicates, export
    from curate.cli import tag as tag_command

    for command in (duplicates, audit, tag_command, export):
        assert "Example:" in (command.help or ""), command.name
