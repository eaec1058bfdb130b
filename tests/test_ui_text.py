"""Text in photos on the search page: the "has text" filter, bound to `has_text=` in the URL,
and a photo's text in its details with the query's words marked (ui/text_highlight.py).

The page runs through its seam, `main(make_engine=...)`, over an index built with the fake
CLIP and captioner (tests/fakes.py) and the real OCR reader, which reads the text rendered in
a few photos (testing/text_photos.py): about a second a photo, so one small index serves the
module.
"""

from __future__ import annotations

import re
import sys

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from indexer.build import build_index
from indexer.store import IndexStore
from testing.text_photos import TEXT_PHOTOS, plain_photo, render
from tests.fakes import fake_models
from tests.test_ui import run_page, shown_ids, text_of
from tests.test_ui_curation import fake_engine
from ui.text_highlight import highlighted, matched_spans

# builds models or indexes, runs the CLI or a server: seconds to minutes
pytestmark = pytest.mark.slow

MAIN = sys.modules["__main__"]  # pytest's, saved before any AppTest run replaces it
WITH_TEXT = ("shop.jpg", "hotel.jpg", "cafe.jpg")  # "OPEN 24 HOURS", two lines, Chinese
MARKED = r":orange-background\[\*\*((?:\\.|[^\\*\]])+)\*\*\]"  # a label of escapes or plain


# --- the highlighting, as a pure function -----------------------------------------------


def marked(markdown: str) -> list[str]:
    """The marked parts of highlighted Markdown, unescaped."""
    return [re.sub(r"\\(.)", r"\1", part) for part in re.findall(MARKED, markdown)]


def test_terms_are_marked_case_and_white_space_aside():
    assert highlighted("OPEN 24 HOURS", ["open24hours"]) == ":orange-background[**OPEN 24 HOURS**]"
    assert highlighted("Open 24 hours", ["HOURS"]) == "Open 24 :orange-background[**hours**]"
    assert highlighted("欢迎光临咖啡店", ["咖啡"]) == "欢迎光临:orange-background[**咖啡**]店"
    assert highlighted("no match here", ["hours", ""]) == "no match here"
    assert highlighted("EXIT", []) == "EXIT"


def test_every_occurrence_is_marked_and_overlaps_merge():
    assert marked(highlighted("sale SALE Sale", ["sale"])) == ["sale SALE Sale"]  # only spaces
    assert marked(highlighted("sale, SALE", ["sale"])) == ["sale", "SALE"]
    assert matched_spans("banana", ["ana"]) == [(1, 6)]  # "ana" twice, overlapping
    assert matched_spans("Grand Hotel", ["grand", "hotel"]) == [(0, 11)]
    assert matched_spans("abc", ["abcd"]) == []


def test_lines_stay_lines_and_a_match_across_them_is_marked_on_each():
    text = "Grand Hotel\n\n  Budapest  \nsince 1902"
    shown = highlighted(text, ["hotelbuda"])
    assert shown.split("  \n") == [
        "Grand :orange-background[**Hotel**]",
        ":orange-background[**Buda**]pest",
        "since 1902",
    ]


def test_photo_text_is_escaped_markdown_and_html_included():
    hostile = "<script>alert(1)</script> **bold** [link](http://x) :red[x] &lt; `code`\n==="
    shown = highlighted(hostile, ["script", "link"])
    assert marked(shown) == ["script", "script", "link"]
    assert "<" not in shown.replace("\\<", "") and ">" not in shown.replace("\\>", "")
    unmarked = re.sub(MARKED, "", shown)
    for special in "*[]()`:&=":  # each one of the text's own is escaped
        assert not re.search(r"(?<!\\)" + re.escape(special), unmarked), special
    assert re.sub(r"\\(.)", r"\1", re.sub(MARKED, r"\1", shown)).replace("  \n", "\n") == hostile
    evil_term = highlighted("a]b", ["]"])  # a term cannot close the mark early
    assert evil_term == "a:orange-background[**\\]**]b"


# --- the detail view's text, with Hit objects made here ----------------------------------


def _text_box(text, terms):
    """The details' text box for a hit that found `terms`, or for no hit (None)."""
    from search.results import Hit
    from ui.results_view import photo_text

    hit = None
    if terms is not None:
        hit = Hit(1, "/p/1.jpg", "", 0.5, 0.5, 0.5, 1, None, text=text, text_terms=terms)
    photo_text(text, hit)


def test_the_details_show_the_text_with_the_found_words_marked():
    page = AppTest.from_function(
        _text_box, kwargs={"text": "OPEN 24 HOURS\nback at 5", "terms": ["open24"]}
    )
    page.run()
    assert not page.exception, page.exception
    values = [m.value for m in page.markdown]
    assert values == [
        "**Text in the photo** · query words marked",
        ":orange-background[**OPEN 24**] HOURS  \nback at 5",
    ]
    page = AppTest.from_function(_text_box, kwargs={"text": "EXIT", "terms": None})
    page.run()
    assert [m.value for m in page.markdown] == ["**Text in the photo**", "EXIT"]
    page = AppTest.from_function(_text_box, kwargs={"text": " \n", "terms": None})
    page.run()
    assert not page.markdown  # no text: no box


# --- the page over an index with text -------------------------------------------------


@pytest.fixture(autouse=True)
def fresh_server():
    """Each test is a new server: nothing cached from another test's models."""
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()
    sys.modules["__main__"] = MAIN


@pytest.fixture(scope="module")
def text_library(tmp_path_factory):
    """3 photos with text (WITH_TEXT) and 2 without, read by the real OCR reader:
    {"index": folder, "ids": {name: id}, "text": {name: text read}}."""
    root = tmp_path_factory.mktemp("ui-text")
    photos = root / "photos"
    photos.mkdir()
    for photo in TEXT_PHOTOS:
        if photo.name in WITH_TEXT:
            render(photo).save(photos / photo.name, quality=92)
    for n in range(2):
        plain_photo(100 + n).save(photos / f"plain_{n}.jpg", quality=92)
    # the decoding workers start by importing `__main__`: pytest's, not an AppTest script
    sys.modules["__main__"] = MAIN
    build_index([photos], root / "index", fake_models(), captions="never")
    store = IndexStore.open(root / "index")
    rows = [store.image(row["id"]) for row in store.db.query("SELECT id FROM images")]
    store.close()
    names = {row["path"].rsplit("/", 1)[-1]: row for row in rows}
    return {"index": root / "index", "ids": {name: row["id"] for name, row in names.items()},
            "text": {name: row["ocr_text"] or "" for name, row in names.items()}}  # fmt: skip


@pytest.fixture
def text_env(text_library, monkeypatch):
    monkeypatch.setenv("INDEXER_HOME", str(text_library["index"]))
    return text_library


def test_the_index_has_the_text_the_tests_expect(text_env):
    squashed = {name: "".join(text.split()).lower() for name, text in text_env["text"].items()}
    assert "open24hours" in squashed["shop.jpg"] and "咖啡" in squashed["cafe.jpg"]
    assert "budapest" in squashed["hotel.jpg"]
    assert not squashed["plain_0.jpg"] and not squashed["plain_1.jpg"]


def test_has_text_round_trips_through_the_url_and_filters(text_env):
    ids = text_env["ids"]
    with_text = sorted(ids[name] for name in WITH_TEXT)
    page = run_page(fake_engine(), q="a sign", rerank="false")
    assert sorted(shown_ids(page)) == sorted(ids.values())  # all 5 photos
    assert page.checkbox(key="has_text").value is False and "has_text" not in page.query_params
    page.checkbox(key="has_text").check().run()  # (the browser writes the URL, not AppTest)
    assert sorted(shown_ids(page)) == with_text
    page = run_page(fake_engine(), q="a sign", rerank="false", has_text="true")  # a shared URL
    assert page.checkbox(key="has_text").value is True
    assert sorted(shown_ids(page)) == with_text
    assert page.query_params == {"q": "a sign", "rerank": "false", "has_text": "true"}
    page.checkbox(key="has_text").uncheck().run()
    assert len(shown_ids(page)) == 5
    for bad in ("lots", "1"):  # a value a checkbox cannot take is ignored, as for the others
        page = run_page(fake_engine(), q="a sign", rerank="false", has_text=bad)
        assert page.checkbox(key="has_text").value is False and len(shown_ids(page)) == 5


def test_details_show_the_photos_text_from_the_url(text_env):
    shop = text_env["ids"]["shop.jpg"]
    page = run_page(fake_engine(), photo=str(shop))  # no search: the text, nothing marked
    assert "**Text in the photo**" in text_of(page)
    assert any("HOURS" in m.value and "background" not in m.value for m in page.markdown)
    plain = text_env["ids"]["plain_0.jpg"]
    assert "Text in the photo" not in text_of(run_page(fake_engine(), photo=str(plain)))


@pytest.mark.parametrize(("name", "query", "expected"),
                         [("shop.jpg", "open24hours", "OPEN24HOURS"),
                          ("cafe.jpg", "咖啡", "咖啡")])  # fmt: skip
def test_a_search_marks_the_words_it_found_in_the_details(text_env, name, query, expected):
    image_id = text_env["ids"][name]
    page = run_page(fake_engine(), q=query, rerank="false", photo=str(image_id))
    found = [part for m in page.markdown for part in marked(m.value)]
    assert [re.sub(r"\s", "", part).upper() for part in found] == [expected]
    assert "**Text in the photo** · query words marked" in text_of(page)
    assert re.search(r"\| text in the photo \| rank \d+ \|", text_of(page))
