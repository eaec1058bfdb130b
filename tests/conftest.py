"""Shared fixtures: tiny random-weight models of the real architectures, built once per run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Tests never touch the network: any hub id must come from a local cache or fail at once.
os.environ.setdefault("INDEXER_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: see indexer/ofa_speed
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> str:
    """An open_clip `local-dir:` spec of a tiny random-weight CLIP."""
    from testing.models import make_clip_folder

    return make_clip_folder(tmp_path_factory.mktemp("models") / "clip", size="tiny", seed=0)


@pytest.fixture(scope="session")
def tiny_ofa_caption(tmp_path_factory) -> str:
    """A ModelScope OFA caption model folder with tiny random weights."""
    from testing.models import make_ofa_folder

    folder = tmp_path_factory.mktemp("models") / "ofa_caption"
    return make_ofa_folder(folder, task="caption", size="tiny", seed=0)


@pytest.fixture(scope="session")
def tiny_ofa_entailment(tmp_path_factory) -> str:
    """A ModelScope OFA visual-entailment model folder with tiny random weights."""
    from testing.models import make_ofa_folder

    folder = tmp_path_factory.mktemp("models") / "ofa_entailment"
    return make_ofa_folder(folder, task="entailment", size="tiny", seed=0)


@pytest.fixture(scope="session")
def tiny_ofa_vqa(tmp_path_factory) -> str:
    """A ModelScope OFA visual-question-answering folder with tiny random weights."""
    from testing.models import make_ofa_folder

    folder = tmp_path_factory.mktemp("models") / "ofa_vqa"
    return make_ofa_folder(folder, task="vqa", size="tiny", seed=0)


@pytest.fixture(scope="session")
def world_cache(tmp_path_factory) -> Path:
    """Where the shapes world's trained models are kept: $INDEXER_WORLD_CACHE (kept between
    runs), else a folder of this run."""
    kept = os.environ.get("INDEXER_WORLD_CACHE")
    cache = Path(kept) if kept else tmp_path_factory.mktemp("world-models")
    cache.mkdir(parents=True, exist_ok=True)
    return cache


@pytest.fixture(scope="session")
def world_models(world_cache):
    """The shapes world's trained model set (testing/world.py), trained once per run: a few
    minutes on 2 cores."""
    from testing.world import trained_models

    return trained_models(world_cache)


@pytest.fixture
def fresh_page_server():
    """A new page server for the test: nothing kept in Streamlit's resource cache (the
    models, the open index) from another test."""
    import streamlit as st

    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


@pytest.fixture
def cli_env(tmp_path, tiny_clip, tiny_ofa_caption) -> dict[str, str]:
    """Environment for running `indexer` as a subprocess on the tiny models."""
    env = dict(os.environ)
    env.update(
        INDEXER_HOME=str(tmp_path / "index"),
        INDEXER_CLIP_MODEL=tiny_clip,
        INDEXER_CAPTION_MODEL=tiny_ofa_caption,
        INDEXER_DEVICE="cpu",
        INDEXER_OFFLINE="1",
    )
    return env


def run_cli(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    """Run `python -m indexer.cli ARGS` and return the finished process (text mode)."""
    done = subprocess.run(
        [sys.executable, "-m", "indexer.cli", *args],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if check and done.returncode != 0:
        raise AssertionError(f"indexer {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done
