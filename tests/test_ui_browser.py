"""The search page in a real browser: `indexer ui` on a free local port, opened at `/?q=...`
in headless Chromium (Debian's, installed by scripts/setup.sh, driven by Playwright), until
the result images have rendered. The screenshot is left in test-artifacts/ui-search.png."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from indexer.build import build_index
from indexer.config import load_settings
from indexer.models import models_from_settings
from testing.photos import write_photos

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
SCREENSHOT = ARTIFACTS / "ui-search.png"
# Without the background-networking flags Chromium keeps calling home on a closed network.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-proxy-server"]  # fmt: skip
START_TIMEOUT_S = 60
RESULTS_TIMEOUT_MS = 60_000
RESULTS = 8


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_healthy(server: subprocess.Popen, port: int, log: Path) -> None:
    """Poll Streamlit's health endpoint until it answers, the server dies, or time runs out."""
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the server stopped ({server.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with direct.open(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.25)
    pytest.fail(f"no answer on port {port} after {START_TIMEOUT_S}s:\n{log.read_text()[-3000:]}")


def stop(server: subprocess.Popen) -> None:
    """Stop the server's process group: politely, then for sure."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)


@pytest.fixture
def served(tmp_path, tiny_clip, tiny_ofa_caption, tiny_ofa_entailment):
    """`indexer ui` on a free port over an index of 12 photos made with the tiny models."""
    if not os.access(CHROMIUM, os.X_OK):
        message = f"{CHROMIUM} is missing; scripts/setup.sh installs Debian's chromium"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    index, port, log = tmp_path / "index", free_port(), tmp_path / "server.log"
    env = dict(os.environ, INDEXER_RERANK_MODEL=tiny_ofa_entailment, INDEXER_DEVICE="cpu")
    command = [sys.executable, "-m", "indexer.cli", "ui", "--index", str(index),
               "--port", str(port)]  # fmt: skip
    with open(log, "wb") as output:  # the server starts while the index is built
        server = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT,
                                  start_new_session=True)  # fmt: skip
    try:
        write_photos(tmp_path / "photos", 12)
        models = {"clip_model": tiny_clip, "caption_model": tiny_ofa_caption, "device": "cpu"}
        settings = load_settings({"index_dir": index, **models}, environ={})
        build_index([tmp_path / "photos"], index, models_from_settings(settings))
        wait_until_healthy(server, port, log)
        yield f"http://127.0.0.1:{port}", log
    finally:
        stop(server)


@pytest.mark.slow
def test_results_render_in_a_real_browser(served, tmp_path):
    from playwright.sync_api import sync_playwright

    base, log = served
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1400, "height": 1000},
        )  # fmt: skip
        try:
            page = browser.new_page()
            page.goto(f"{base}/?q=a+red+car&k={RESULTS}&top=4", timeout=RESULTS_TIMEOUT_MS)
            try:
                page.wait_for_function(
                    """count => {
                        const found = document.querySelectorAll('[data-testid="stImage"] img');
                        const images = [...found];
                        return images.length >= count
                            && images.every(image => image.complete && image.naturalWidth > 0);
                    }""",
                    arg=RESULTS, timeout=RESULTS_TIMEOUT_MS,
                )  # fmt: skip
            finally:
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(SCREENSHOT), full_page=True)
            widths = page.eval_on_selector_all(
                '[data-testid="stImage"] img', "images => images.map(image => image.naturalWidth)"
            )
            assert len(widths) == RESULTS and all(0 < width <= 320 for width in widths), widths
            assert page.get_by_label("What should the photos show?").input_value() == "a red car"
            assert page.get_by_text("8 photos for “a red car”").is_visible()
            assert page.get_by_text("not reranked").count() == RESULTS - 4

            query = page.get_by_label("What should the photos show?")  # the URL follows the box
            query.fill("a boat")
            query.press("Enter")
            page.wait_for_url("**q=a+boat**", timeout=RESULTS_TIMEOUT_MS)
            assert "k=8" in page.url
        finally:
            browser.close()
    assert SCREENSHOT.stat().st_size > 10_000, log.read_text()[-3000:]
