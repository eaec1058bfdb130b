"""A new user with no model cache and no network: the real CLI, with the network cut by proxy
variables that point at a closed port (no mocks), must fail fast with one line."""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path

import pytest

from testing.photos import write_photos
from tests.conftest import run_cli

# builds models or indexes, runs the CLI or a server: seconds to minutes
pytestmark = pytest.mark.slow

DEFAULT_CLIP = "hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K"
# the issue asks for under 10 s; the margin is for a loaded test machine
OFFLINE_FAILURE_S = 10.0
NOISE = ("traceback", "warning", "retry", "retrying")
# variables that would switch offline mode on, or move the caches the test empties
DROPPED = (
    "INDEXER_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "MODELSCOPE_OFFLINE",
    "HF_HUB_CACHE", "HF_ENDPOINT", "INDEXER_CLIP_MODEL", "INDEXER_CAPTION_MODEL",
    "INDEXER_RERANK_MODEL",
)  # fmt: skip


def closed_port() -> int:
    """A local TCP port nothing listens on: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with socket.socket() as check:
        assert check.connect_ex(("127.0.0.1", port)) != 0, f"port {port} is open"
    return port


@pytest.fixture
def no_network_env(tmp_path) -> dict[str, str]:
    """os.environ without offline mode, with empty model caches and every proxy variable
    at a closed port, so any request fails as it would with no network."""
    env = {k: v for k, v in os.environ.items() if k not in DROPPED}
    proxy = f"http://127.0.0.1:{closed_port()}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[name] = env[name.lower()] = proxy
    env.update(NO_PROXY="", no_proxy="", INDEXER_DEVICE="cpu",
               INDEXER_HOME=str(tmp_path / "index"), HF_HOME=str(tmp_path / "hf"),
               MODELSCOPE_CACHE=str(tmp_path / "modelscope"))  # fmt: skip
    for folder in ("hf", "modelscope"):
        (tmp_path / folder).mkdir()
    return env


def timed_cli(*args: str, env: dict[str, str]):
    start = time.monotonic()
    done = run_cli(*args, env=env, check=False)
    return done, time.monotonic() - start


def assert_one_quick_line(done, elapsed: float, *names: str) -> str:
    assert done.returncode == 1, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("indexer: "), done.stderr
    assert not any(word in done.stderr.lower() for word in NOISE), done.stderr
    for name in names:
        assert name in lines[0]
    assert elapsed < OFFLINE_FAILURE_S, f"took {elapsed:.1f} s: {lines[0]}"
    return lines[0]


@pytest.mark.parametrize("offline_flag", [None, "1"])
def test_build_with_no_cache_and_no_network_fails_fast_in_one_line(
    tmp_path, no_network_env, offline_flag
):
    write_photos(tmp_path / "photos", 1)
    if offline_flag:
        no_network_env["INDEXER_OFFLINE"] = offline_flag
    done, elapsed = timed_cli("build", str(tmp_path / "photos"), env=no_network_env)
    cache = str(Path(no_network_env["HF_HOME"]) / "hub")
    line = assert_one_quick_line(done, elapsed, repr(DEFAULT_CLIP), cache, "--clip-model")
    assert ("offline mode is on" if offline_flag else "no network") in line


def fake_hub_cache(hf_home: Path, repo: str, model_folder: str) -> Path:
    """Put an open_clip model folder into a Hugging Face cache as `repo`, laid out as
    huggingface_hub leaves a download; return the repo's cache folder."""
    commit = "0" * 40
    repo_dir = hf_home / "hub" / ("models--" + repo.replace("/", "--"))
    snapshot = repo_dir / "snapshots" / commit
    shutil.copytree(model_folder.removeprefix("local-dir:"), snapshot)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(commit)
    return repo_dir


def test_cached_hub_clip_loads_without_network_and_search_fails_fast_once_it_is_gone(
    tmp_path, no_network_env, tiny_clip, tiny_ofa_caption
):
    """The index records the hub id; loading it from the cache must not try the network
    (a try would print retry warnings and take half a minute here)."""
    write_photos(tmp_path / "photos", 1)
    repo_dir = fake_hub_cache(Path(no_network_env["HF_HOME"]), "test/tiny-clip", tiny_clip)
    built = run_cli("build", str(tmp_path / "photos"), "--clip-model", "hf-hub:test/tiny-clip",
                    "--caption-model", tiny_ofa_caption, env=no_network_env)  # fmt: skip
    assert "new 1" in built.stdout
    assert not any(word in built.stderr.lower() for word in NOISE), built.stderr

    shutil.rmtree(repo_dir)
    done, elapsed = timed_cli("search", "a red square", "--no-rerank", env=no_network_env)
    assert_one_quick_line(done, elapsed, "'hf-hub:test/tiny-clip'", "no network")


# --- indexer models list / fetch ---------------------------------------------------

DEFAULT_MODELS = ("damo/ofa_image-caption_coco_distilled_en",
            "hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
            "damo/ofa_visual-entailment_snli-ve_distilled_v2_en")  # fmt: skip


def test_list_says_what_is_here_and_what_is_not(no_network_env, tiny_clip, tiny_ofa_caption):
    env = dict(no_network_env, INDEXER_OFFLINE="1")
    listed = json.loads(run_cli("models", "list", "--json", env=env).stdout)["models"]
    roles = ("caption", "clip", "rerank")
    assert [(m["role"], m["spec"], m["path"]) for m in listed] == [
        (role, spec, None) for role, spec in zip(roles, DEFAULT_MODELS, strict=True)
    ]
    env.update(INDEXER_CLIP_MODEL=tiny_clip, INDEXER_CAPTION_MODEL=tiny_ofa_caption)
    listed = json.loads(run_cli("models", "list", "--json", env=env).stdout)["models"]
    here = {m["role"]: m for m in listed}
    assert here["clip"]["path"] == tiny_clip.removeprefix("local-dir:")
    assert here["caption"]["path"] == tiny_ofa_caption and here["caption"]["size"] > 10_000
    text = run_cli("models", "list", env=env).stdout
    assert "not on this machine" in text and tiny_ofa_caption in text


@pytest.mark.parametrize("offline_flag", [False, True])
def test_fetch_without_network_fails_fast_in_one_line(no_network_env, offline_flag):
    env = dict(no_network_env, **({"INDEXER_OFFLINE": "1"} if offline_flag else {}))
    done, elapsed = timed_cli("models", "fetch", env=env)
    line = assert_one_quick_line(done, elapsed, DEFAULT_MODELS[0])
    assert ("offline mode is on" if offline_flag else "no network") in line


def test_fetch_with_everything_here_downloads_nothing(
    no_network_env, tiny_clip, tiny_ofa_caption, tiny_ofa_entailment
):
    env = dict(
        no_network_env,
        INDEXER_CLIP_MODEL=tiny_clip,
        INDEXER_CAPTION_MODEL=tiny_ofa_caption,
        INDEXER_RERANK_MODEL=tiny_ofa_entailment,
    )
    fetched = json.loads(run_cli("models", "fetch", "--json", env=env).stdout)["models"]
    assert all(model["path"] and model["size"] for model in fetched)
