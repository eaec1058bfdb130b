"""The detail view's "Ask about this photo" (ui/ask_view.py), through Streamlit's AppTest, on
an index built with the tiny CLIP and the question-answering model of $INDEXER_VQA_MODEL:
the tiny random-weight OFA folder, or a recording fake put in the model's place."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

import ui.ask_view
from indexer.build import build_index
from indexer.config import load_settings
from indexer.models import models_from_settings
from indexer.store import IndexStore
from indexer.thumbnails import DETAIL_SIZE, thumbnail
from search.ask import OfaQuestionAnswerer
from testing.photos import write_photos
from ui.shared import escape

# builds models or indexes, runs the CLI or a server: seconds to minutes
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("fresh_page_server")]

APP = Path(__file__).resolve().parent.parent / "ui" / "app.py"
QUESTION = "What colour is the ball?"


@pytest.fixture(scope="module")
def library(tmp_path_factory, tiny_clip):
    """3 photos indexed with the tiny CLIP only: no captions, no text read (not asked about)."""
    root = tmp_path_factory.mktemp("ui-ask")
    write_photos(root / "photos", 3)
    settings = load_settings({"index_dir": root / "index", "clip_model": tiny_clip,
                              "device": "cpu"}, environ={})  # fmt: skip
    built = build_index([root / "photos"], settings.index_dir, models_from_settings(settings),
                        captions="never", read_text=None)  # fmt: skip
    assert built.new == 3
    store = IndexStore.open(settings.index_dir)
    ids = [row["id"] for row in store.db.query("SELECT id FROM images ORDER BY id")]
    store.close()
    return SimpleNamespace(index=settings.index_dir, ids=ids)


@pytest.fixture
def page_env(library, tiny_ofa_vqa, monkeypatch):
    monkeypatch.setenv("INDEXER_HOME", str(library.index))
    monkeypatch.setenv("INDEXER_VQA_MODEL", tiny_ofa_vqa)
    monkeypatch.setenv("INDEXER_DEVICE", "cpu")
    return library


class Recording:
    """A question answerer in the OFA one's place, recording what it is given."""

    loads: list[tuple] = []
    asked: list[tuple] = []

    def __init__(self, spec, device="auto", trust_remote_code=False) -> None:
        self.name = spec
        Recording.loads.append((spec, device, trust_remote_code))

    def answer(self, picture, question):
        Recording.asked.append((picture.mode, picture.size, question))
        return "a red ball [on] *grass*"


@pytest.fixture
def recording(monkeypatch):
    Recording.loads, Recording.asked = [], []
    monkeypatch.setattr(ui.ask_view, "OfaQuestionAnswerer", Recording)
    return Recording


def open_photo(photo_id: int) -> AppTest:
    """The page at `/?photo=ID`, after its first run."""
    page = AppTest.from_file(str(APP), default_timeout=60)
    page.query_params["photo"] = str(photo_id)
    page.run()
    assert not page.exception, page.exception
    return page


def ask(page: AppTest, question: str) -> AppTest:
    page.text_input(key="ask-question").input(question)
    page.button(key="ask-button").click().run()
    assert not page.exception, page.exception
    return page


def answers(page: AppTest) -> list[str]:
    return [m.value for m in page.markdown if m.value.startswith("**Answer:**")]


def detail_picture(index: Path, photo_id: int) -> Image.Image:
    store = IndexStore.open(index)
    try:
        with Image.open(thumbnail(store, photo_id, DETAIL_SIZE)) as opened:
            return opened.convert("RGB")
    finally:
        store.close()


def test_the_tiny_model_answers_about_the_photo_shown(page_env, tiny_ofa_vqa):
    photo = page_env.ids[1]
    page = open_photo(photo)
    assert not answers(page) and page.button(key="ask-button")  # nothing loaded or asked yet
    page = ask(page, QUESTION)
    expected = OfaQuestionAnswerer(tiny_ofa_vqa, "cpu").answer(
        detail_picture(page_env.index, photo), QUESTION
    )
    assert expected and answers(page) == [f"**Answer:** {escape(expected)}"]
    assert [c.value for c in page.caption if c.value == escape(QUESTION)]
    assert not page.error and not page.warning
    page.text_input(key="ask-question").input("is it day?").run()  # typed, not asked
    assert answers(page) == [f"**Answer:** {escape(expected)}"]


def test_the_answerer_loads_once_and_sees_the_photo_by_id(page_env, recording, tiny_ofa_vqa):
    photo = page_env.ids[0]
    page = ask(open_photo(photo), QUESTION)
    assert answers(page) == [r"**Answer:** a red ball \[on\] \*grass\*"]  # shown literally
    page = ask(page, "and the sky?")
    assert recording.loads == [(tiny_ofa_vqa, "cpu", False)]  # once per server
    size = detail_picture(page_env.index, photo).size
    assert recording.asked == [("RGB", size, QUESTION), ("RGB", size, "and the sky?")]
    page = ask(page, "   ")
    assert page.warning[0].value == "the question is empty; ask something about the photo"
    assert len(recording.asked) == 2 and not answers(page)


def test_a_model_that_cannot_load_is_one_error_line(page_env, monkeypatch, tmp_path):
    monkeypatch.setenv("INDEXER_VQA_MODEL", str(tmp_path / "no-such-model"))
    page = ask(open_photo(page_env.ids[2]), "")  # refused before any model loads
    assert page.warning[0].value.startswith("the question is empty") and not page.error
    page = ask(page, QUESTION)
    [error] = page.error
    assert "no-such-model" in error.value and "has no configuration.json" in error.value
    assert "\n" not in error.value and not answers(page)
    assert len(page.image) == 1 and page.code  # the rest of the details still shows
