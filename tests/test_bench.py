"""The benchmark runs end to end on a tiny size (it proves it works; it asserts no timing)."""

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_bench_runs_on_a_tiny_size(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--size", "tiny", "--photos", "3", "--loop-photos", "2",
         "--batch-size", "2", "--vectors", "500", "--json", str(out)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert {"indexing", "queries", "sweep"} <= set(results)
    indexing = results["indexing"]
    for key in ("loop_images_min", "build_default_images_min", "build_fast_images_min",
                "decode_images_s", "clip_min_cosine_vs_fp32"):  # fmt: skip
        assert indexing[key] > 0
    assert indexing["default_captions_vs_plain"]["identical"] == "3/3"
    assert results["sweep"][0]["recall@10"] == 1.0  # exact search at this size
    assert "straightforward loop" in done.stdout and "FAISS search" in done.stdout
