#!/usr/bin/env bash
# Create .venv and install the project with what its tests need. Safe to rerun: steps that
# are already done are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }
have() { .venv/bin/python -m pip show -q "$1" >/dev/null 2>&1; }

# torch first, at the versions that install from this machine's disk (a CUDA build that also runs on CPU).
have torch || pip install "torch==2.14.1" "torchvision==0.29.1"
pip install -e ".[test]"
# ModelScope's OFA imports torchaudio and fairseq; their own pins would replace torch, so
# they go in without dependencies (fairseq's imports are in pyproject.toml).
have torchaudio || pip install --no-deps "torchaudio==2.11.0"
have fairseq-fixed || pip install --no-deps --no-build-isolation "fairseq-fixed==0.12.3.1"
# Text in photos: RapidOCR 1.4.4 is the last release whose wheel holds its models (later ones
# download them); it asks for the GUI opencv-python, so it goes in without its dependencies
# (pyproject.toml lists them, with the headless opencv).
have rapidocr-onnxruntime || pip install --no-deps "rapidocr-onnxruntime==1.4.4"
# Debian packages: chromium for the search page's browser test (never a browser of
# playwright's own), and a CJK font for the photos with Chinese text the OCR tests draw.
debs=()
[ -x /usr/bin/chromium ] || debs+=(chromium)
[ -f /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ] || debs+=(fonts-wqy-zenhei)
if [ ${#debs[@]} -gt 0 ]; then
    as_root=""; [ "$(id -u)" = 0 ] || as_root="sudo -n"
    export DEBIAN_FRONTEND=noninteractive
    $as_root apt-get update -qq >/dev/null
    $as_root apt-get install -y -qq "${debs[@]}" >/dev/null
fi
