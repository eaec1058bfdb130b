"""Zero-shot tags: stored per photo, replaced per label, and usable as search filters."""

import json
import re
import sqlite3

import numpy as np
import pytest
from PIL import Image

from curate.tags import label_scores, parse_labels, tag_photos, tagged_photos
from indexer.build import build_index
from indexer.errors import IndexerError, IndexMismatch
from indexer.models import ModelSet
from indexer.store import IndexStore
from search.engine import SearchEngine
from search.filters import Filters
from testing.photos import COLOURS, write_photos
from tests.conftest import run_cli
from tests.fakes import ColourEmbedder, FakeCaptioner, FakeEmbedder, tiny_clip_models

# builds models or indexes, runs the CLI or a server: seconds to minutes
pytestmark = pytest.mark.slow

SIZES = {"red": [(64, 48), (80, 60)], "green": [(64, 48), (90, 60)], "blue": [(70, 50)]}


@pytest.fixture
def colours(tmp_path):
    """An index of solid-colour photos built with the colour embedder: (store, embedder,
    {path: colour})."""
    photos, truth = tmp_path / "photos", {}
    photos.mkdir()
    for colour, sizes in SIZES.items():
        for width, height in sizes:
            path = photos / f"{colour}_{width}.png"
            Image.new("RGB", (width, height), COLOURS[colour]).save(path)
            truth[str(path)] = colour
    embedder = ColourEmbedder()
    models = ModelSet("fake-captioner", embedder.name, FakeCaptioner, lambda: embedder)
    build_index([photos], tmp_path / "index", models)
    store = IndexStore.open(tmp_path / "index")
    yield store, embedder, truth
    store.close()


def stored(store):
    rows = store.db.execute(
        "SELECT images.path, label, score, model FROM tags JOIN images ON images.id = image_id"
    )
    return {(path, label): (score, model) for path, label, score, model in rows}


def test_labels_are_stored_scored_and_replaced(colours):
    store, embedder, truth = colours
    progress = []
    report = tag_photos(store, embedder, ["red", "green", "blue"], on_progress=progress.append)
    assert (report.photos, report.tagged) == (5, 5)
    assert report.counts == {"red": 2, "green": 2, "blue": 1}
    tags = stored(store)
    assert {(path, label) for path, label in tags} == set(truth.items())
    assert all(score > 0.9 and model == "colour-clip" for score, model in tags.values())
    assert progress[-1].done == progress[-1].total == 5

    # tagging with one label replaces that label only
    store.db.execute("INSERT INTO tags VALUES (999, 'red', 1.0, 'stale')")  # a stale row
    tag_photos(store, embedder, ["red"], threshold=0.5)  # one label: a yes/no question
    after = stored(store)
    assert {k for k in after if k[1] == "red"} == {(p, c) for p, c in truth.items() if c == "red"}
    assert {k for k in after if k[1] != "red"} == {k for k in tags if k[1] != "red"}
    assert store.db.execute("SELECT count(*) FROM tags WHERE image_id = 999").fetchone()[0] == 0
    assert store.tag_counts() == {"green": 2, "red": 2, "blue": 1}
    listed = tagged_photos(store, ["green"])
    assert {row["path"] for row in listed} == {p for p, c in truth.items() if c == "green"}
    assert tagged_photos(store, ["green", "red"]) == []  # every label must apply


def test_tags_filter_search_and_go_with_changed_content(colours, tmp_path):
    store, embedder, truth = colours
    tag_photos(store, embedder, ["red", "green", "blue"])
    engine = SearchEngine(store.index_dir, load_embedder=lambda spec: embedder)
    hits = engine.search("anything", k=10, rerank=False, filters=Filters(tags=("red",))).hits
    assert sorted(hit.path for hit in hits) == sorted(p for p, c in truth.items() if c == "red")
    engine.close()

    red = next(p for p, c in truth.items() if c == "red")
    Image.new("RGB", (64, 48), COLOURS["blue"]).save(red)  # new content: old tags go
    models = ModelSet("fake-captioner", embedder.name, FakeCaptioner, lambda: embedder)
    build_index([tmp_path / "photos"], store.index_dir, models)
    assert (red, "red") not in stored(store) and store.tag_counts()["red"] == 1


def test_bad_input_is_refused(colours, tmp_path):
    store, embedder, _ = colours
    assert parse_labels(" beach, ,city,beach ,  old  town ") == ["beach", "city", "old town"]
    assert parse_labels("猫，狗、海滩, 长城") == ["猫", "狗", "海滩", "长城"]
    with pytest.raises(ValueError, match="at least one label"):
        tag_photos(store, embedder, parse_labels(" , "))
    with pytest.raises(ValueError, match="threshold"):
        tag_photos(store, embedder, ["red"], threshold=0)
    with pytest.raises(IndexMismatch, match="colour-clip"):
        tag_photos(store, FakeEmbedder(), ["red"])
    with pytest.raises(IndexerError, match=r"tagged 'red' \(tags: none yet\)"):
        tagged_photos(store, ["red"])
    tag_photos(store, embedder, ["red", "green", "blue"])
    with pytest.raises(IndexerError, match=r"tagged 'sunset' \(tags: green, red, blue\)"):
        tagged_photos(store, ["sunset"])
    (tmp_path / "nothing").mkdir()
    build_index([tmp_path / "nothing"], tmp_path / "empty", ModelSet(
        "c", "colour-clip", FakeCaptioner, lambda: embedder))  # fmt: skip
    empty = IndexStore.open(tmp_path / "empty")
    with pytest.raises(IndexerError, match="empty"):
        tag_photos(empty, embedder, ["red"])
    empty.close()


def test_scores_are_a_softmax_over_the_labels():
    photos = [[1.0, 0.0], [0.6, 0.8]]
    labels = [[1.0, 0.0], [0.0, 1.0]]
    scores = label_scores(photos, labels)
    assert scores.sum(axis=1) == pytest.approx([1.0, 1.0])
    assert scores[0, 0] > 0.999 and scores[1, 1] > 0.999  # 100 x a cosine gap of 0.2: decisive
    gentle = label_scores(photos, labels, scale=10)  # 10 x 0.2 = 2 logits apart
    assert gentle[1, 1] == pytest.approx(1 / (1 + np.exp(-2)), abs=1e-6)


def test_cli_tags_then_search_filters(tmp_path, cli_env, tiny_clip):
    write_photos(tmp_path / "photos", 6)
    build_index([tmp_path / "photos"], cli_env["INDEXER_HOME"], tiny_clip_models(tiny_clip))
    labels = "beach,mountain,city,food,people,document,screenshot"
    done = run_cli("tag", "--labels", labels, "--threshold", "0.1", "--json", env=cli_env)
    report = json.loads(done.stdout)
    assert report["labels"] == labels.split(",") and report["model"] == tiny_clip
    assert report["photos"] == 6 and 0 < report["tagged"] < 6  # random weights: some "city"
    with sqlite3.connect(tmp_path / "index" / "index.db") as db:
        rows = db.execute("SELECT path, label, score FROM tags JOIN images ON id = image_id")
        rows = rows.fetchall()
    assert sum(report["counts"].values()) == len(rows) and min(r[2] for r in rows) >= 0.1
    label = max(report["counts"], key=report["counts"].get)
    engine = SearchEngine(cli_env["INDEXER_HOME"], device="cpu")  # the index's tiny CLIP
    found = engine.search("a photo", k=10, rerank=False, filters=Filters(tags=(label,)))
    engine.close()
    assert {hit.path for hit in found.hits} == {path for path, tag, _ in rows if tag == label}

    text = run_cli("tag", "--labels", "city, food", env=cli_env).stdout
    assert re.fullmatch(r"tagged \d of 6 photos: city \d, food \d\n", text)

    for args, expected in [
        (["--labels", " , "], "at least one label"),
        (["--labels", "x", "--index", str(tmp_path / "no")], "no index"),
    ]:
        bad = run_cli("tag", *args, env=cli_env, check=False)
        assert bad.returncode == 1 and "Traceback" not in bad.stderr
        assert bad.stderr.count("\n") == 1 and expected in bad.stderr, bad.stderr
    usage = run_cli("tag", "--labels", "x", "--threshold", "2", env=cli_env, check=False)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr
