"""The whole retrieval path with learned weights: a tiny CLIP trained on coloured shapes."""

import json
from pathlib import Path

import pytest

from testing.shapes import LABELS, text_of, train_shape_clip, write_shape_photos
from tests.conftest import run_cli


@pytest.mark.slow
def test_search_ranks_the_asked_for_shape_first(tmp_path, cli_env):
    clip = train_shape_clip(tmp_path / "shape_clip")
    truth = write_shape_photos(tmp_path / "photos", per_label=4)
    env = dict(cli_env, INDEXER_CLIP_MODEL=clip)
    run_cli("build", str(tmp_path / "photos"), env=env)
    precisions = {}
    for label in [("red", "circle"), ("blue", "square"), ("pink", "triangle")]:
        assert label in LABELS
        done = run_cli("search", text_of(*label), "--no-rerank", "-k", "5", "--json", env=env)
        hits = json.loads(done.stdout)["results"]
        precisions[label] = sum(truth[Path(hit["path"])] == label for hit in hits) / 5
    assert min(precisions.values()) >= 0.8, precisions
