"""`make demo`'s committed inputs: the world's generator inputs and the example files a user
copies are what the generator makes, and the product's own readers take every row."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from curate.audit import read_pairs
from curate.finetune.data import survey
from testing.demo import BANNER, write_examples
from testing.shapes import COLOURS, LABELS
from testing.world import absent_labels, rare_labels, write_library

DATA = Path(__file__).resolve().parent.parent / "data"


def test_the_committed_examples_are_the_generators(tmp_path):
    made = write_examples(tmp_path / "examples", photos=tmp_path / "world" / "photos")
    for path in made:
        committed = DATA / "examples" / path.name
        assert committed.read_text() == path.read_text(), f"regenerate {committed}"


def test_every_example_row_is_usable(tmp_path):
    write_library(tmp_path / "world" / "photos")
    examples = write_examples(tmp_path / "examples", photos=tmp_path / "world" / "photos")
    folder = examples[0].parent
    for name, task in (("captions.csv", "captions"), ("labels.csv", "entailment")):
        found = survey(folder / name, task, holdout=0.0)
        assert found.problems == [] and found.train > 0, (name, found.problems)
    rows = read_pairs(folder / "audit.csv")
    assert rows and all(row.error is None and Path(row.path).is_file() for row in rows)
    assert (folder / "tags.txt").read_text().strip().split(",") == list(COLOURS)


def test_the_library_leaves_out_the_absent_and_has_few_of_the_rare(tmp_path):
    truth = write_library(tmp_path)
    counts = {label: list(truth.values()).count(label) for label in LABELS}
    assert all(counts[label] == 0 for label in absent_labels())
    assert all(0 < counts[label] < 5 for label in rare_labels())
    assert sorted(tmp_path.iterdir()) == sorted(truth)


def test_ui_passes_its_banner_to_the_page(monkeypatch):
    import ui.cli

    seen = {}
    monkeypatch.setattr(ui.cli.os, "execve", lambda path, args, env: seen.update(env))
    done = CliRunner().invoke(ui.cli.ui, ["--banner", BANNER], env={"INDEXER_HOME": "/tmp/x"})
    assert done.exit_code == 0, done.output
    assert seen["INDEXER_BANNER"] == BANNER
