"""Crash safety: killed builds, damaged files, concurrent use, hostile decoders."""

import json
import subprocess
import sys
import time

import pytest

from indexer.build import build_index
from indexer.decode_pool import DecodePool
from testing.photos import scene, write_photos
from tests.conftest import run_cli
from tests.crash_trials import run_trial
from tests.fakes import fake_models

# builds models or indexes, runs the CLI or a server: seconds to minutes
pytestmark = pytest.mark.slow


def test_killed_builds_leave_a_consistent_index_and_resume(tmp_path, cli_env):
    outcomes = [run_trial(seed, tmp_path, cli_env) for seed in (1, 2)]
    outcomes += [run_trial(seed, tmp_path, cli_env, mode="text") for seed in (3, 4)]
    assert all(o["redone"] + o["committed_before_kill"] == 24 for o in outcomes)
    # killed in (or after) the text pass: the photos marked read are not read again
    assert all(o["read_again"] + o["read_before_kill"] == 24 for o in outcomes)
    assert any(o["read_before_kill"] > 0 for o in outcomes[2:]), outcomes


@pytest.fixture
def built(tmp_path, cli_env):
    write_photos(tmp_path / "photos", 6)
    run_cli("build", str(tmp_path / "photos"), env=cli_env)
    return cli_env


def status(env):
    return run_cli("status", "--json", env=env, check=False)


@pytest.mark.parametrize("damage, word", [("truncate", "damaged"), ("delete", "missing"),
                                          ("stale", "out of date")])  # fmt: skip
def test_a_bad_faiss_file_is_rebuilt_from_the_database(built, tmp_path, damage, word):
    faiss_file = tmp_path / "index" / "vectors.faiss"
    if damage == "truncate":
        faiss_file.write_bytes(faiss_file.read_bytes()[:200])
    elif damage == "delete":
        faiss_file.unlink()
    else:
        saved = faiss_file.read_bytes()
        scene(77).save(tmp_path / "photos" / "new.jpg")
        run_cli("build", str(tmp_path / "photos"), env=built)
        faiss_file.write_bytes(saved)  # an older file beside newer rows
    done = status(built)
    report = json.loads(done.stdout)
    assert word in report["notice"] and report["vectors"] == report["indexed"]
    found = json.loads(run_cli("search", "a scene", "--no-rerank", "--json", "-k", "50",
                               env=built).stdout)  # fmt: skip
    assert len(found["results"]) == report["indexed"]
    assert "rebuilt it from the" in found["notices"][0]


def test_a_damaged_database_gives_one_line_naming_the_file(built, tmp_path):
    db_file = tmp_path / "index" / "index.db"
    run_cli("status", env=built)  # checkpoint the WAL into the main file
    data = bytearray(db_file.read_bytes())
    for offset in range(4096 + 16, min(len(data), 4096 * 4), 7):  # pages 2-4, not the header
        data[offset] ^= 0xFF
    db_file.write_bytes(bytes(data))
    for args in (["status"], ["search", "x", "--no-rerank"], ["build", str(tmp_path / "photos")]):
        done = run_cli(*args, env=built, check=False)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1 and len(lines) == 1, (args, done.stderr)
        assert str(db_file) in lines[0] and "Traceback" not in done.stderr


def test_search_answers_during_a_build_and_a_second_build_is_refused(tmp_path, cli_env):
    from indexer.embed import ClipEmbedder
    from search.engine import SearchEngine

    photos = tmp_path / "photos"
    write_photos(photos, 4)
    run_cli("build", str(photos), env=cli_env)
    write_photos(photos, 40, start=4)
    build = subprocess.Popen([sys.executable, "-m", "indexer.cli", "build", str(photos),
                              "--batch-size", "1"], env=cli_env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)  # fmt: skip
    engine = SearchEngine(tmp_path / "index",
                          load_embedder=lambda spec: ClipEmbedder(spec, "cpu"))  # fmt: skip
    answers, refused = [], None
    while build.poll() is None:
        answers.append(len(engine.search("a scene", k=100, rerank=False).hits))
        if refused is None and answers[-1] > 4:  # the build is committing batches now
            refused = run_cli("build", str(photos), env=cli_env, check=False)
        time.sleep(0.1)
    assert build.returncode == 0, build.stderr.read()
    assert min(answers) >= 4 and answers == sorted(answers)
    assert refused is not None and refused.returncode == 1 and "being built" in refused.stderr
    assert len(engine.search("a scene", k=100, rerank=False).hits) == 44
    engine.close()


def test_files_that_hang_crash_or_bomb_the_decoder_fail_alone(tmp_path):
    photos, index = tmp_path / "photos", tmp_path / "index"
    write_photos(photos, 3)
    for name in ("hang.jpg", "crash.jpg", "hog.jpg"):
        scene(9).save(photos / name)
    pool = DecodePool(workers=2, timeout_s=2, memory_mb=1024,
                      decoder="tests.hostile_decoders:misbehaving")  # fmt: skip
    report = build_index([photos], index, fake_models(), decode_pool=pool)
    reasons = {path.rsplit("/", 1)[1]: reason for path, reason in report.failures}
    assert report.new == 3
    assert reasons == {
        "hang.jpg": "decoding took longer than 2 s",
        "crash.jpg": "decoder crashed (signal 11)",
        "hog.jpg": "decoding needed more than the 1024 MB memory budget",
    }
