"""bench/api_load.py runs end to end in its --tiny mode against a real `indexer serve`
subprocess (it proves the load benchmark works; no timing is asserted)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow  # builds tiny models and an index, starts a server: about a minute
def test_tiny_load_run_has_no_errors(tmp_path):
    out = tmp_path / "load.json"
    command = [sys.executable, "-m", "bench.api_load", "--tiny", "--index", str(tmp_path / "w")]
    done = subprocess.run(command + ["--json", str(out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["odd"] == {} and report["warm_up"]["search"]["outcome"] == "200"
    for name, requests in (("search", 100), ("rerank", 20)):
        phase = report[name]
        assert phase["requests"] == requests and phase["errors"] == 0, phase
        assert set(phase["statuses"]) <= {"200", "503"} and phase["statuses"]["200"] > 0
        assert 0 < phase["latency_ms"]["p50"] <= phase["latency_ms"]["p99"], phase
        assert phase["per_s"] > 0 and phase["rss_mb"]["first"] > 0
        assert f"| {name} | {requests} |" in done.stdout
    assert report["rerank"]["statuses"].get("503", 0) == report["queue"]["refused"]
