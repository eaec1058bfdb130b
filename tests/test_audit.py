"""Image-text audit: every CSV row is accounted for, bad rows are reported, worst first."""

import csv
import json
import random
import shutil

import pytest

from curate.audit import audit_csv, parse_pairs, read_pairs, write_report
from indexer.build import build_index
from indexer.errors import IndexerError
from indexer.models import ModelSet
from indexer.store import IndexStore
from testing.photos import scene, write_photos
from tests.conftest import run_cli
from tests.fakes import FakeCaptioner, FakeEmbedder, TextReranker, tiny_clip_models

# builds models or indexes, runs the CLI or a server: seconds to minutes
pytestmark = pytest.mark.slow


def write_pairs(folder, photos, header=True):
    """A pairs CSV with good and bad rows, beside `photos`; returns (path, expected rows)."""
    scene(50).save(photos / "new.jpg")  # on disk, not in the index
    shutil.copy(photos / "photo_001.jpg", folder / "renamed_copy.jpg")  # indexed content
    (photos / "broken.jpg").write_bytes(random.Random(3).randbytes(3000))
    rows = [
        ("photos/photo_000.jpg", "a plate of food"),  # line 2: yes
        (str(photos / "photo_001.jpg"), "a red car"),  # 3: no, the worst
        ("photos/photo_002.jpg", "two dogs"),  # 4: no, milder
        ("photos/missing.jpg", "a cat"),  # 5: missing file
        ("photos/photo_003.jpg", "   "),  # 6: empty text
        ("photos/new.jpg", "maybe a tree"),  # 7: maybe; not indexed
        ("renamed_copy.jpg", "a red car"),  # 8: no; caption found by content
        ("photos/broken.jpg", "a bridge"),  # 9: not an image
        ("", "no path at all"),  # 10
    ]
    path = folder / "pairs.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if header:
            writer.writerow(["path", "text"])
        writer.writerows(rows)
        handle.write("\n")  # a blank line is not a row
    return path, rows


@pytest.fixture
def indexed(tmp_path):
    photos = tmp_path / "photos"
    write_photos(photos, 4)
    models = ModelSet("fake-captioner", "fake-clip", FakeCaptioner, FakeEmbedder)
    build_index([photos], tmp_path / "index", models)
    store = IndexStore.open(tmp_path / "index")
    yield store, photos
    store.close()


def test_every_row_is_accounted_for_worst_first(indexed, tmp_path):
    store, photos = indexed
    pairs, rows = write_pairs(tmp_path, photos)
    reranker = TextReranker()
    progress = []
    report = audit_csv(pairs, reranker, store, on_progress=progress.append)
    assert len(report.rows) == len(rows) and reranker.pictures == 5
    assert progress[-1].done == progress[-1].total == len(rows)
    errors = [(row.line, row.error) for row in report.rows if row.error]
    assert errors == [(5, "file not found"), (6, "empty text"),
                      (9, "not an image Pillow recognises"), (10, "no path")]  # fmt: skip
    assert report.rows[: len(errors)] == [row for row in report.rows if row.error]
    judged = report.rows[len(errors) :]
    assert [row.line for row in judged] == [3, 8, 4, 7, 2]  # P(no) 0.9, 0.9, 0.5, 0.25, 0.1
    assert [row.verdict for row in judged] == ["no", "no", "no", "maybe", "yes"]
    by_line = {row.line: row for row in report.rows}
    assert by_line[2].caption == "a picture of 640x480 pixels" and by_line[2].indexed
    assert by_line[2].path == str(photos / "photo_000.jpg")  # relative to the CSV's folder
    assert by_line[7].caption is None and not by_line[7].indexed  # judged all the same
    assert by_line[8].caption == "a picture of 640x480 pixels" and by_line[8].indexed
    assert by_line[6].caption is not None  # a bad text still shows what the picture is
    assert (by_line[3].p_yes, by_line[3].p_no, by_line[3].p_maybe) == (0.05, 0.90, 0.05)
    assert report.summary() == {"rows": 9, "yes": 1, "no": 3, "maybe": 1, "errors": 4}


def test_reports_as_csv_and_json_never_over_inputs(indexed, tmp_path):
    store, photos = indexed
    pairs, _ = write_pairs(tmp_path, photos)
    report = audit_csv(pairs, TextReranker(), store)
    written = write_report(report, tmp_path / "report.csv", store, protect=[pairs])
    with open(written, newline="", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert [int(row["line"]) for row in table] == [row.line for row in report.rows]
    assert list(table[0]) == ["line", "path", "text", "verdict", "p_yes", "p_no", "p_maybe",
                              "caption", "indexed", "error"]  # fmt: skip
    assert table[4]["p_no"] == "0.9000" and table[0]["error"] == "file not found"
    data = json.loads(write_report(report, tmp_path / "r.json").read_text())
    assert data["summary"]["rows"] == 9 and data["model"] == "text-reranker"
    assert len(data["rows"]) == 9 and data["rows"][4]["verdict"] == "no"

    before = pairs.read_bytes()
    for target, expected in [(pairs, "input files"), (photos / "photo_000.jpg", "report must"),
                             (tmp_path / "report.txt", "report must"),
                             (tmp_path / "nowhere" / "r.csv", "does not exist")]:  # fmt: skip
        with pytest.raises(ValueError, match=expected):
            write_report(report, target, store, protect=[pairs])
    assert pairs.read_bytes() == before
    photo_named_csv = photos / "looks.csv"  # an indexed photo is never overwritten
    shutil.copy(photos / "photo_000.jpg", photo_named_csv)
    store.db.execute("UPDATE images SET path = ? WHERE path LIKE '%photo_000.jpg'",
                     [str(photo_named_csv)])  # fmt: skip
    with pytest.raises(ValueError, match="indexed photo"):
        write_report(report, photo_named_csv, store)


def test_csv_shapes(tmp_path):
    (tmp_path / "a.csv").write_text("x.jpg,one,two\ny.jpg,fine\n", encoding="utf-8")
    rows = read_pairs(tmp_path / "a.csv")
    assert rows[0].error == "expected 2 columns (path,text), found 3"
    assert rows[1].error is None and rows[1].text == "fine" and rows[1].path.endswith("y.jpg")
    (tmp_path / "b.csv").write_text('\ufeffsku,Text,Path\n1,"a, b",z.jpg\n', encoding="utf-8")
    (only,) = read_pairs(tmp_path / "b.csv")  # header: extra columns ignored, BOM dropped
    assert (only.text, only.path) == ("a, b", str(tmp_path / "z.jpg"))
    (tmp_path / "c.csv").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(IndexerError, match="not UTF-8"):
        read_pairs(tmp_path / "c.csv")
    with pytest.raises(IndexerError, match="no such file"):
        read_pairs(tmp_path / "none.csv")
    assert read_pairs(tmp_path / "a.csv")[0].line == 1
    uploaded = parse_pairs("\ufeffpath,text\nshop/a.jpg,A red bag\n", tmp_path)  # an upload
    assert [(row.line, row.path, row.text) for row in uploaded] == [
        (2, str(tmp_path / "shop" / "a.jpg"), "A red bag")
    ]


def test_cli_report_json_csv_and_text(tmp_path, cli_env, tiny_clip, tiny_ofa_entailment):
    photos = tmp_path / "photos"
    write_photos(photos, 4)
    build_index([photos], cli_env["INDEXER_HOME"], tiny_clip_models(tiny_clip))
    pairs, rows = write_pairs(tmp_path, photos)
    env = dict(cli_env, INDEXER_RERANK_MODEL=tiny_ofa_entailment)
    done = run_cli("audit", str(pairs), "--json", "-o", str(tmp_path / "report.csv"), env=env)
    report = json.loads(done.stdout)
    assert done.stderr.startswith(f"wrote {tmp_path / 'report.csv'}: 9 rows: ")
    assert report["model"] == tiny_ofa_entailment and report["summary"]["rows"] == len(rows)
    assert report["summary"]["errors"] == 4 and len(report["rows"]) == 9
    judged = [row for row in report["rows"] if not row["error"]]
    assert [row["p_no"] for row in judged] == sorted((r["p_no"] for r in judged), reverse=True)
    for row in judged:
        assert row["verdict"] in ("yes", "no", "maybe")
        assert row["p_yes"] + row["p_no"] + row["p_maybe"] == pytest.approx(1.0, abs=1e-5)
    with open(tmp_path / "report.csv", newline="", encoding="utf-8") as handle:
        assert [row["line"] for row in csv.DictReader(handle)] == [
            str(row["line"]) for row in report["rows"]]  # fmt: skip

    for args, expected in [([str(pairs), "-o", str(tmp_path / "r.txt")], "report must be"),
                           ([str(tmp_path / "none.csv")], "no such file"),
                           ([str(pairs), "--rerank-model", str(tmp_path / "nope")],
                            "rerank model folder")]:  # fmt: skip
        bad = run_cli("audit", *args, env=env, check=False)
        assert bad.returncode == 1 and "Traceback" not in bad.stderr
        assert bad.stderr.count("\n") == 1 and expected in bad.stderr, bad.stderr


def test_cli_text_listing(indexed, tmp_path, monkeypatch):
    from click.testing import CliRunner

    import search.rerank
    from curate.cli import audit

    store, photos = indexed
    pairs, _ = write_pairs(tmp_path, photos)
    monkeypatch.setattr(
        search.rerank, "OfaEntailmentReranker", lambda spec, device, **options: TextReranker()
    )
    monkeypatch.setattr("curate.cli.quiet_model_logs", lambda: None)  # process-wide
    done = CliRunner().invoke(audit, [str(pairs), "--index", str(store.index_dir)])
    assert done.exit_code == 0, done.output
    text = done.stdout.splitlines()
    assert text[0] == f"error  line 5: file not found  {photos / 'missing.jpg'}"
    worst = f"no     line 3: P(yes) 0.05  P(no) 0.90  P(maybe) 0.05  {photos}/photo_001.jpg"
    assert text[4] == worst
    assert text[5:7] == ["       text:    a red car", "       caption: a picture of 640x480 pixels"]
    assert "       caption: (not in the index)" in text
    assert text[-1] == "9 rows: 1 yes, 3 no, 1 maybe, 4 errors"


def test_trust_remote_code_reaches_the_reranker(indexed, tmp_path, monkeypatch):
    from click.testing import CliRunner

    import search.rerank
    from curate.cli import audit

    store, photos = indexed
    pairs, _ = write_pairs(tmp_path, photos)
    asked = []

    def reranker(spec, device, **options):
        asked.append(options.get("trust_remote_code"))
        return TextReranker()

    monkeypatch.setattr(search.rerank, "OfaEntailmentReranker", reranker)
    monkeypatch.setattr("curate.cli.quiet_model_logs", lambda: None)
    for flags, expected in (([], False), (["--trust-remote-code"], True)):
        done = CliRunner().invoke(audit, [str(pairs), "--index", str(store.index_dir), *flags])
        assert done.exit_code == 0, done.output
        assert asked[-1] is expected


def test_only_indexed_never_opens_other_files(indexed, tmp_path):
    from curate.audit import audit_pairs

    store, photos = indexed
    pairs, _ = write_pairs(tmp_path, photos)
    rows = read_pairs(pairs)
    reranker = TextReranker()
    report = audit_pairs(rows, reranker, store, only_indexed=True)
    errors = {row.line: row.error for row in report.rows if row.error}
    # the file outside the index and the copy under a new name are refused unopened
    assert errors[7] == errors[8] == errors[9] == errors[5] == "not in the index"
    assert reranker.pictures == 3  # photo_000, 001, 002; photo_003 has no text
    with pytest.raises(ValueError):
        audit_pairs(rows, reranker, None, only_indexed=True)
