"""The search page in a real browser: `indexer ui` on a free local port, opened at `/?q=...`
in headless Chromium (Debian's, installed by scripts/setup.sh, driven by Playwright), until
the result images have rendered. The screenshots are left in test-artifacts/: ui-search.png
(an English query) and ui-search-cjk.png (a Chinese one, drawn with a CJK font: scripts/setup.sh
installs fonts-wqy-zenhei beside chromium)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from indexer.build import build_index
from indexer.config import load_settings
from indexer.models import models_from_settings
from testing.photos import write_photos

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
SCREENSHOT = ARTIFACTS / "ui-search.png"
CJK_SCREENSHOT = ARTIFACTS / "ui-search-cjk.png"
QUERY_BOX = "What should the photos show?"
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


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_clip, tiny_ofa_caption, tiny_ofa_entailment):
    """`indexer ui` on a free port over an index of 12 photos made with the tiny models, one
    server for the module's tests (each opens its own browser, so its own page session)."""
    if not os.access(CHROMIUM, os.X_OK):
        message = f"{CHROMIUM} is missing; scripts/setup.sh installs Debian's chromium"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    tmp_path = tmp_path_factory.mktemp("served")
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


@contextmanager
def chromium(profile: Path):
    """Debian's Chromium, headless, with a fresh profile: its browser context."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1400, "height": 1000},
        )  # fmt: skip
        try:
            yield browser
        finally:
            browser.close()


def wait_for_results(page, count: int, screenshot: Path, *wait_for) -> None:
    """Wait until `count` result images have loaded and the locators `wait_for` are visible;
    the page's screenshot is saved whether they came or not."""
    try:
        page.wait_for_function(
            """count => {
                const found = document.querySelectorAll('[data-testid="stImage"] img');
                const images = [...found];
                return images.length >= count
                    && images.every(image => image.complete && image.naturalWidth > 0);
            }""",
            arg=count, timeout=RESULTS_TIMEOUT_MS,
        )  # fmt: skip
        for locator in wait_for:
            locator.wait_for(timeout=RESULTS_TIMEOUT_MS)
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=True)


@pytest.mark.slow
def test_results_render_in_a_real_browser(served, tmp_path):
    base, log = served
    with chromium(tmp_path / "profile") as browser:
        page = browser.new_page()
        page.goto(f"{base}/?q=a+red+car&k={RESULTS}&top=4", timeout=RESULTS_TIMEOUT_MS)
        wait_for_results(page, RESULTS, SCREENSHOT)
        widths = page.eval_on_selector_all(
            '[data-testid="stImage"] img', "images => images.map(image => image.naturalWidth)"
        )
        assert len(widths) == RESULTS and all(0 < width <= 320 for width in widths), widths
        assert page.get_by_label(QUERY_BOX).input_value() == "a red car"
        assert page.get_by_text("8 photos for “a red car”").is_visible()
        assert page.get_by_text("not reranked").count() == RESULTS - 4

        query = page.get_by_label(QUERY_BOX)  # the URL follows the box
        query.fill("a boat")
        query.press("Enter")
        page.wait_for_url("**q=a+boat**", timeout=RESULTS_TIMEOUT_MS)
        assert "k=8" in page.url
    assert SCREENSHOT.stat().st_size > 10_000, log.read_text()[-3000:]


# --- CJK text -------------------------------------------------------------------------
# Without a font that has the ideographs, Chromium draws each one as the page font's
# "missing glyph" box (tofu), and still lays the text out, so "the text is there" proves
# nothing. Two checks that do fail then (tried with a FONTCONFIG_FILE naming only the DejaVu
# and Liberation fonts: each failed on its own, and the screenshot showed five boxes):
#  - pixels: in the computed font of the query box and of the heading, the query and another
#    five ideographs are drawn on canvases. Tofu boxes are all alike, so the two drawings
#    would be the same image, and the same as five U+10FFFD (a private-use code point no font
#    draws: the tofu itself); real glyphs differ, and each is a full em wide (a CJK font's
#    ideographs are square) where the box is narrower.
#  - fonts: Chromium's DevTools protocol names the fonts that drew a node's text
#    (CSS.getPlatformFontsForNode). The page's own web font (Source Sans) has no ideographs,
#    so in the query box and the heading the query's glyphs must come from a system font.

CJK_QUERY = "红色的圆形"  # "a red circle"
OTHER_CJK = "蓝色的方形"  # "a blue square": same length, two ideographs in common
TOFU = "\U0010fffd" * len(CJK_QUERY)

DRAWN = """async (element, texts) => {
    await document.fonts.ready;
    const font = getComputedStyle(element).font;
    const size = parseFloat(getComputedStyle(element).fontSize);
    return texts.map(text => {
        const canvas = document.createElement('canvas');
        canvas.width = Math.ceil(size * (text.length + 2));
        canvas.height = Math.ceil(size * 2);
        const context = canvas.getContext('2d');
        context.font = font;
        context.textBaseline = 'middle';
        context.fillText(text, size / 2, size);
        const alpha = context.getImageData(0, 0, canvas.width, canvas.height).data
            .filter((_, i) => i % 4 === 3);
        return {font, size, width: context.measureText(text).width,
                inked: alpha.filter(a => a > 0).length, image: canvas.toDataURL()};
    });
}"""


def drawn_glyphs(element, texts: list[str]) -> list[dict]:
    """Each text drawn on a canvas in the element's computed font: its font, size (px),
    advance width, how many pixels got ink, and the picture as a data URL."""
    return element.evaluate(DRAWN, texts)


def system_font_glyphs(cdp, expression: str) -> dict[str, int]:
    """{family: glyph count} of the system (not web) fonts that drew the text of the element
    `expression` evaluates to, as Chromium reports them."""
    cdp.send("DOM.getDocument", {"depth": 0})
    found = cdp.send("Runtime.evaluate", {"expression": expression})["result"]
    node = cdp.send("DOM.requestNode", {"objectId": found["objectId"]})["nodeId"]
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    return {font["familyName"]: font["glyphCount"] for font in fonts if not font["isCustomFont"]}


@pytest.mark.slow
def test_a_chinese_query_and_its_notice_render_with_a_cjk_font(served, tmp_path):
    base, log = served
    with chromium(tmp_path / "profile") as browser:
        page = browser.new_page()
        page.goto(f"{base}/?q={urllib.parse.quote(CJK_QUERY)}&k={RESULTS}&top=4",
                  timeout=RESULTS_TIMEOUT_MS)  # fmt: skip
        notice = page.get_by_text("not reranked: the text is in Chinese")
        heading = page.get_by_text(f"{RESULTS} photos for “{CJK_QUERY}”")
        wait_for_results(page, RESULTS, CJK_SCREENSHOT, notice, heading)
        query = page.get_by_label(QUERY_BOX)
        assert query.input_value() == CJK_QUERY
        assert notice.is_visible() and heading.is_visible()
        assert "the judge reads English" in notice.inner_text()

        for element in (query, heading):
            mine, other, tofu = drawn_glyphs(element, [CJK_QUERY, OTHER_CJK, TOFU])
            where = f"{CJK_QUERY} in {mine['font']}"
            assert mine["inked"] > 0 and other["inked"] > 0, where
            as_other, as_tofu = mine["image"] == other["image"], mine["image"] == tofu["image"]
            assert not as_other, f"{where}: drawn the same as {OTHER_CJK}, so as tofu boxes"
            assert not as_tofu, f"{where}: drawn the same as missing-glyph boxes"
            em_square = mine["size"] * len(CJK_QUERY)
            assert abs(mine["width"] - em_square) <= 0.05 * em_square, (where, mine["width"])

        cdp = browser.new_cdp_session(page)
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        box = f"document.querySelector('input[aria-label=\"{QUERY_BOX}\"]')"
        strong = "[...document.querySelectorAll('strong')]"
        strong += f".find(bold => bold.textContent.includes('{CJK_QUERY}'))"
        for expression in (box, strong):
            fonts = system_font_glyphs(cdp, expression)
            assert sum(fonts.values()) == len(CJK_QUERY), (expression, fonts)
    assert CJK_SCREENSHOT.stat().st_size > 10_000, log.read_text()[-3000:]
