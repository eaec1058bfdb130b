"""`indexer finetune`: CSV rows checked and skipped, --out guarded, a short run that the
product's loaders accept, --resume, and (slow) the shapes world learned from random weights."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from curate.finetune.data import Problem, Row, read_rows, survey
from curate.finetune_cli import finetune as finetune_command
from testing.world import write_labels_csv, write_pairs_csv, write_pictures

# builds models or indexes, runs the CLI or a server: seconds to minutes
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_bases(tmp_path_factory) -> dict[str, str]:
    """Random-weight OFA folders of the size the world trains (testing/world.py)."""
    from testing.models import make_ofa_folder
    from testing.world import OFA_SIZE

    root = tmp_path_factory.mktemp("bases")
    return {task: make_ofa_folder(root / kind, task=kind, size=OFA_SIZE, seed=0)
            for task, kind in (("captions", "caption"), ("entailment", "entailment"))}  # fmt: skip


@pytest.fixture
def world(tmp_path) -> dict[Path, tuple[str, str]]:
    return write_pictures(tmp_path / "photos", per_label=2, seed=3)


def _files(folder: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in folder.rglob("*")}


def _invoke(*args: str):
    return CliRunner().invoke(finetune_command, list(args), catch_exceptions=False)


def _bad_captions_csv(folder: Path, world) -> Path:
    pictures = sorted(world)
    (folder / "photos" / "broken.jpg").write_bytes(b"not a picture at all")
    path = folder / "photos" / "pairs.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "caption"])  # line 1
        for picture in pictures:  # lines 2..25
            writer.writerow([picture.name, "a " + " ".join(world[picture])])
        writer.writerow(["missing.jpg", "a red circle"])  # 26
        writer.writerow(["broken.jpg", "a red circle"])  # 27
        writer.writerow([pictures[0].name, "  "])  # 28
        writer.writerow([pictures[1].name])  # 29: one column (a header names the columns)
    return path


def test_bad_caption_rows_are_problems_with_their_lines(tmp_path, world):
    found = survey(_bad_captions_csv(tmp_path, world), "captions", holdout=0.1)
    reasons = {problem.line: problem.reason for problem in found.problems}
    assert reasons[26] == "file not found"
    assert reasons[27].startswith(("not an image", "cannot decode"))
    assert reasons[28] == "empty caption" and reasons[29] == "empty caption"
    assert found.train + found.held_out == 24 and found.held_out >= 1
    assert len(found.sha256) == 64


def test_labels_rows_need_a_known_label(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("a.jpg,a red circle,yes\nb.jpg,a red circle,perhaps\nc.jpg,text\n"
                    "d.jpg,a red circle,NO\n")  # fmt: skip
    rows = list(read_rows(path, "entailment"))
    assert isinstance(rows[0], Row) and rows[0].label == "yes" and rows[0].key == "a.jpg"
    assert rows[1] == Problem(2, str(tmp_path / "b.jpg"),
                              "unknown label 'perhaps' (expected yes, no or maybe)")  # fmt: skip
    assert rows[2].reason == "expected 3 columns (path,text,label), found 2"
    assert rows[3].label == "no"


def test_an_audit_report_with_corrected_verdicts_is_a_labels_file(tmp_path):
    path = tmp_path / "report.csv"
    path.write_text("line,path,text,verdict,p_yes,p_no,p_maybe,caption,indexed,error\n"
                    "3,/x/a.jpg,a red circle,no,0.1,0.8,0.1,,false,\n")  # fmt: skip
    (row,) = read_rows(path, "entailment")
    assert (row.path, row.text, row.label) == ("/x/a.jpg", "a red circle", "no")


def test_a_csv_without_a_usable_row_stops_with_one_line(tmp_path, small_bases):
    path = tmp_path / "pairs.csv"
    path.write_text("missing.jpg,a red circle\n")
    done = CliRunner().invoke(finetune_command, ["captions", str(path), "--base",
                              small_bases["captions"], "--out", str(tmp_path / "out")])  # fmt: skip
    assert done.exit_code == 1
    assert done.output.strip().splitlines() == [
        f"indexer: {path}: no usable training row (1 skipped, 0 held out)"
    ]
    assert not (tmp_path / "out").exists()


def test_an_out_that_is_not_an_earlier_run_stops_with_one_line(tmp_path, world, small_bases):
    pairs = write_pairs_csv(tmp_path / "photos" / "pairs.csv", world)
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    done = CliRunner().invoke(finetune_command, ["captions", str(pairs), "--base",
                              small_bases["captions"], "--out", str(taken)])  # fmt: skip
    assert done.exit_code == 1
    assert done.output.strip().splitlines() == [
        f"indexer: --out {taken} exists and is not an earlier `indexer finetune` run; "
        "give a new or empty folder"
    ]
    assert [p.name for p in taken.iterdir()] == ["notes.txt"]


def test_a_short_run_makes_a_caption_model_folder(tmp_path, world, small_bases):
    from indexer.caption import OfaCaptioner

    pairs = _bad_captions_csv(tmp_path, world)
    before = _files(tmp_path)
    out = tmp_path / "captioner"
    done = CliRunner().invoke(finetune_command, [
        "captions", str(pairs), "--base", small_bases["captions"], "--out", str(out),
        "--steps", "2", "--batch-size", "4", "--device", "cpu"])  # fmt: skip
    assert done.exit_code == 0, done.output + done.stderr
    skipped = [line for line in done.stderr.splitlines() if line.startswith("skipped:")]
    assert [line.split(":")[1] for line in skipped] == [" line 26", " line 27", " line 28",
                                                        " line 29"]  # fmt: skip
    assert "exact match" in done.stdout and "token accuracy" in done.stdout
    after = _files(tmp_path)
    assert {p: t for p, t in after.items() if not p.startswith(str(out))} == before
    assert {"configuration.json", "config.json", "vocab.json", "merges.txt",
            "model.safetensors", "finetune.json"} <= {p.name for p in out.iterdir()}  # fmt: skip
    record = json.loads((out / "finetune.json").read_text())
    assert record["base"] == small_bases["captions"] and record["step"] == 2
    assert record["finished"] and record["data"]["skipped_rows"] == 4
    (caption,) = OfaCaptioner(str(out), "cpu").caption([_picture(sorted(world)[0])])
    assert isinstance(caption, str)


def _picture(path: Path):
    from PIL import Image

    with Image.open(path) as opened:
        return opened.convert("RGB")


def test_a_short_run_makes_an_entailment_model_folder(tmp_path, world, small_bases):
    from search.rerank import OfaEntailmentReranker

    labels = write_labels_csv(tmp_path / "photos" / "labels.csv", world)
    out = tmp_path / "judge"
    done = _invoke("entailment", str(labels), "--base", small_bases["entailment"], "--out",
                   str(out), "--steps", "2", "--batch-size", "4", "--json")  # fmt: skip
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["steps"] == 2 and set(report["after"]["confusion"]) == {"yes", "no", "maybe"}
    judge = OfaEntailmentReranker(str(out), "cpu")
    (judgement,) = judge.judge([_picture(sorted(world)[0])], "a red circle")
    assert judgement.p_yes + judgement.p_no + judgement.p_maybe == pytest.approx(1.0)


def test_resume_continues_where_an_interrupted_run_stopped(tmp_path, world, small_bases):
    import torch
    from safetensors.torch import load_file

    from curate.finetune import finetune

    pairs = write_pairs_csv(tmp_path / "photos" / "pairs.csv", world)
    common = dict(steps=4, batch_size=4, device="cpu")

    def interrupt_at_3(progress):
        if progress.phase == "training" and progress.done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        finetune("captions", pairs, small_bases["captions"], tmp_path / "a",
                 on_progress=interrupt_at_3, **common)  # fmt: skip
    assert json.loads((tmp_path / "a" / "finetune.json").read_text())["step"] == 3
    resumed = finetune("captions", pairs, small_bases["captions"], tmp_path / "a",
                       resume=True, **common)  # fmt: skip
    assert resumed.resumed_from == 3 and resumed.steps == 4
    straight = finetune("captions", pairs, small_bases["captions"], tmp_path / "b", **common)
    assert straight.resumed_from is None
    a = load_file(tmp_path / "a" / "model.safetensors")
    b = load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-5) for k in a)


def test_a_fixed_stem_is_computed_once_per_picture():
    import torch

    from curate.finetune.stem_cache import StemCache

    torch.manual_seed(0)
    stem = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).eval()
    keys = list(stem.state_dict())
    pictures = torch.randn(3, 3, 8, 8)
    expected = stem(pictures)
    cache = StemCache(stem, max_bytes=2 * expected[0].nelement() * 4)  # room for two
    assert torch.equal(stem(pictures), expected) and (cache.hits, cache.misses) == (0, 3)
    assert torch.allclose(stem(pictures[[2, 0, 1]]), expected[[2, 0, 1]], atol=1e-6)
    assert (cache.hits, cache.misses) == (2, 4)  # the third did not fit: computed again
    assert list(stem.state_dict()) == keys
    cache.remove()
    assert "forward" not in vars(stem) and torch.allclose(stem(pictures), expected, atol=1e-6)
