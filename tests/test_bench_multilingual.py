"""bench/multilingual_cost.py runs end to end on tiny configs (it proves it works; no timing)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "multilingual_cost.py"
MODELS = {
    "ViT-B-32",
    "xlm-roberta-base-ViT-B-32",
    "nllb-clip-base-siglip",
    "ViT-B-16-SigLIP-i18n-256",
}


@pytest.mark.slow  # a fresh process per model, each importing torch and open_clip
def test_tiny_run_measures_every_model(tmp_path):
    out = tmp_path / "cost.json"
    command = [sys.executable, str(SCRIPT), "--tiny", "--repeats", "2", "--batch", "2"]
    done = subprocess.run(
        command + ["--json", str(out)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert set(results["models"]) == MODELS and results["settings"]["tiny"] is True
    for name, figures in results["models"].items():
        assert "error" not in figures, (name, figures)
        for key in ("dim", "text_params", "image_params", "load_rss_mb", "query_ms", "image_ms"):
            assert figures[key] > 0, (name, key, figures[key])
        assert figures["peak_rss_mb"] >= figures["load_rss_mb"]
        assert f"| {name} |" in done.stdout
    # each tokenizer's padding: SimpleTokenizer and the HF ones to 77, SigLIP i18n to 64
    contexts = {name: figures["context_length"] for name, figures in results["models"].items()}
    assert contexts == {name: 64 if "i18n" in name else 77 for name in MODELS}
