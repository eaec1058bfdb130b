"""The benchmark runs end to end on a tiny size (it proves it works; it asserts no timing)."""

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_bench_runs_on_a_tiny_size(tmp_path, world_models, world_cache):
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--size", "tiny", "--photos", "3", "--loop-photos", "2",
         "--batch-size", "2", "--vectors", "500", "--world-cache", str(world_cache),
         "--command-photos", "6", "--early-photos", "6",
         "--json", str(out)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert {"indexing", "queries", "world", "sweep", "rerank", "commands", "early"} <= set(results)
    judged = results["rerank"]["world"]  # prepared squares + one pass: today's answers
    same, pairs = judged["same_verdicts"].split("/")
    assert judged["max_p_yes_diff"] <= 0.02 and same == pairs
    commands, early = results["commands"], results["early"]
    assert commands["build_default_speedup"] > 0 and commands["search_peak_mb"] > 0
    assert 0 < early["searchable_s"] <= early["complete_s"] and early["captioned"] == 6
    assert early["searchable_s"] <= early["text_read_s"] <= early["complete_s"]
    assert early["text_read"] == 6
    # what reading text costs: the default build (it reads text) beside --no-ocr
    ocr = commands["ocr"]
    assert commands["build_no_ocr_s"] > 0 and commands["build_no_ocr_text_s"] == 0
    assert ocr["ratio"] > 0 and 0 < ocr["text_pass_s"] < commands["build_default_s"]
    assert 0 < ocr["text_pass_share"] < 1 and "Text in photos: the default build" in done.stdout
    indexing = results["indexing"]
    for key in ("loop_images_min", "build_default_images_min", "build_fast_images_min",
                "decode_images_s", "clip_min_cosine_vs_fp32"):  # fmt: skip
        assert indexing[key] > 0
    assert indexing["default_captions_vs_plain"]["identical"] == "3/3"
    assert results["sweep"][0]["recall@10"] == 1.0  # exact search at this size
    assert "straightforward loop" in done.stdout and "FAISS search" in done.stdout
    world = results["world"]  # the trained captioner: identical captions, guard counted
    assert world["exact_vs_plain"]["identical"] == f"{world['pictures']}/{world['pictures']}"
    assert world["guard"]["captions"] == world["pictures"] >= world["guard"]["redone"] >= 0
    assert "shapes world" in done.stdout
