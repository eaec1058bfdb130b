"""The page's curation views (Duplicates, Audit) and the Search view's tag filter, through
Streamlit's AppTest.

Indexes are built in-process with the fake models (tests/fakes.py), so every grouping,
tag and verdict is known; the page gets them through its seam, `make_engine`. Each view is
run as `st.navigation` runs it, from the list `ui.app.views()` returns. One test runs the
audit with the tiny real OFA entailment model. Downloads are read back from Streamlit's
media storage, as a browser would fetch them.
"""

from __future__ import annotations

import csv
import io
import os
import re
import sys

import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from curate.audit import REPORT_COLUMNS
from curate.tags import tag_photos
from indexer.build import build_index
from indexer.models import ModelSet
from indexer.store import IndexStore
from search.engine import SearchEngine
from testing.photos import COLOURS, scene
from tests.conftest import run_cli
from tests.fakes import ColourEmbedder, FakeCaptioner, FakeEmbedder, TextReranker, tiny_clip_models
from tests.test_duplicates import plant_library
from tests.test_ui import run_page, shown_ids, text_of

# builds models or indexes, runs the CLI or a server: seconds to minutes
pytestmark = pytest.mark.slow

DAY = 86_400
EPOCH = 1_600_000_000
FAKE_MODELS = ModelSet("fake-captioner", "fake-clip", FakeCaptioner, FakeEmbedder)
MAIN = sys.modules["__main__"]  # pytest's, saved before any AppTest run replaces it
GROUP = r":\w+-badge\[(exact|near|burst)\] (\d+) photos · keep \*\*(.+)\*\*"
MEMBER = r":\w+-badge\[(keep|also)\] (.+)"


@pytest.fixture(autouse=True)
def fresh_server():
    """Each test is a new server: nothing cached from another test's models."""
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()
    sys.modules["__main__"] = MAIN


def build(photos, index, models) -> None:
    """build_index, with pytest's own `__main__`: a Streamlit run leaves its script there,
    and the decoding workers, which start by importing `__main__`, would run it."""
    sys.modules["__main__"] = MAIN
    build_index([photos], index, models)


@pytest.fixture
def downloads(monkeypatch):
    """What the page offers for download, by file name, as the browser would fetch it."""
    from streamlit.runtime.media_file_storage import MediaFileKind
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    offered = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def recording(self, data, mimetype, kind, filename=None):
        if kind == MediaFileKind.DOWNLOADABLE:
            offered[filename] = data
        return original(self, data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", recording)
    return offered


def fake_engine(reranker=None, embedder=FakeEmbedder):
    """A `make_engine` for the page over an index built with fake models."""

    def make_engine(settings, rerank):
        return SearchEngine(settings.index_dir, load_embedder=lambda spec: embedder(),
                            load_reranker=lambda: reranker, device="cpu")  # fmt: skip

    return make_engine


def _view(title, make_engine):
    import streamlit as st

    from search.engine import make_engine as real_engine
    from ui.app import views

    pages = [page for page in views(make_engine or real_engine) if page.title == title]
    st.navigation(pages).run()


def run_view(title: str, make_engine=None, **params) -> AppTest:
    """The view titled `title`, opened with `?PARAMS`, after its first run."""
    page = AppTest.from_function(_view, kwargs={"title": title, "make_engine": make_engine},
                                 default_timeout=60)  # fmt: skip
    page.query_params.update(params)
    page.run()
    assert not page.exception, page.exception
    return page


def unescape(markdown: str) -> str:
    return re.sub(r"\\(.)", r"\1", markdown)


def matches(page, pattern: str) -> list[tuple]:
    found = [re.fullmatch(pattern, m.value) for m in page.markdown]
    return [tuple(unescape(group) for group in m.groups()) for m in found if m]


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """5 distinct photos, days apart, in trip/ and home/: no duplicates, no tags."""
    root = tmp_path_factory.mktemp("plain")
    photos = root / "photos"
    for n, (folder, seed) in enumerate([("trip", 30), ("trip", 31), ("trip", 32),
                                        ("home", 33), ("home", 34)]):  # fmt: skip
        (photos / folder).mkdir(parents=True, exist_ok=True)
        path = photos / folder / f"photo_{n:03d}.jpg"
        scene(seed).save(path, quality=85)
        os.utime(path, (EPOCH + 10 * n * DAY,) * 2)
    scene(50).save(root / "outside.jpg")  # a picture on disk, not in the index
    build(photos, root / "index", FAKE_MODELS)
    return root


@pytest.fixture
def plain_env(plain, monkeypatch):
    monkeypatch.setenv("INDEXER_HOME", str(plain / "index"))
    return plain


# --- Duplicates -----------------------------------------------------------------------


def test_duplicates_view_shows_the_groups_with_their_keepers(tmp_path, monkeypatch, downloads):
    paths = plant_library(tmp_path / "photos")
    build(tmp_path / "photos", tmp_path / "index", FAKE_MODELS)
    monkeypatch.setenv("INDEXER_HOME", str(tmp_path / "index"))
    import ui.views_curation

    runs = []
    real = ui.views_curation.find_duplicates
    monkeypatch.setattr(ui.views_curation, "find_duplicates",
                        lambda *a, **k: runs.append(1) or real(*a, **k))  # fmt: skip
    page = run_view("Duplicates", fake_engine())
    assert "**4 groups** (2 exact, 1 near, 1 burst) among 12 photos." in text_of(page)
    assert [s.value for s in page.subheader] == ["Exact copies (2)", "Near-duplicates (1)",
                                                  "Bursts (1)"]  # fmt: skip
    assert matches(page, GROUP) == [
        ("exact", "2", "cake.jpg"), ("exact", "2", "burst_1.jpg"),
        ("near", "2", "sea.jpg"), ("burst", "3", "burst_3.jpg"),
    ]  # fmt: skip
    assert matches(page, MEMBER) == [  # the keeper first, paths from the photos' common folder
        ("keep", "trip/cake.jpg"), ("also", "backup/cake.jpg"),
        ("keep", "trip/burst_1.jpg"), ("also", "backup/burst_1.jpg"),
        ("keep", "trip/sea.jpg"), ("also", "phone/sea_small.jpg"),
        ("keep", "trip/burst_3.jpg"), ("also", "trip/burst_1.jpg"), ("also", "trip/burst_2.jpg"),
    ]  # fmt: skip
    sizes = [c.value for c in page.caption if " × " in c.value]
    assert sizes[4].startswith("640 × 480 · ") and sizes[4].endswith(" · 2020-09-13 12:26:40")
    assert sizes[5].startswith("320 × 240 · ") and " KB · " in sizes[5]
    assert len(page.image) == 9  # thumbnails made by id, under the index
    store = IndexStore.open(tmp_path / "index")
    ids = {row["path"]: row["id"] for row in store.db.query("SELECT id, path FROM images")}
    store.close()
    made = {int(name.split("-")[0]) for name in os.listdir(tmp_path / "index" / "thumbnails")}
    grouped = {"cake", "cake_copy", "burst_1", "burst_1_copy", "sea", "sea_small", "burst_2",
               "burst_3"}  # fmt: skip
    assert made == {ids[paths[name]] for name in grouped}
    cli = run_cli("duplicates", "--json", env=dict(os.environ))
    assert downloads["duplicates.json"].decode() == cli.stdout  # what `--json` prints
    page.run()  # a rerun (another widget, say) does not compare again ...
    assert len(runs) == 1 and len(matches(page, GROUP)) == 4
    page.button(key="look-again").click().run()  # ... "Look again" does
    assert len(runs) == 2 and len(matches(page, GROUP)) == 4
    monkeypatch.setattr(ui.views_curation, "GROUPS_SHOWN", 1)  # a long list comes in parts
    page = run_view("Duplicates", fake_engine())
    assert [kind for kind, _, _ in matches(page, GROUP)] == ["exact", "near", "burst"]
    assert any(c.value.startswith("1 of 2 groups shown") for c in page.caption)
    page.button(key="more-exact").click().run()
    assert [kind for kind, _, _ in matches(page, GROUP)] == ["exact", "exact", "near", "burst"]


def test_duplicates_view_says_when_there_are_none(plain_env, downloads):
    page = run_view("Duplicates", fake_engine())
    assert [info.value for info in page.info] == [
        "No duplicates found among 5 photos: no exact copies, near-duplicates or bursts."
    ]
    assert not page.image and not page.subheader and not downloads


# --- Audit ----------------------------------------------------------------------------


def test_audit_view_lists_every_row_worst_first_and_offers_the_report(plain_env, downloads):
    trip = plain_env / "photos" / "trip"
    lines = [
        "trip/photo_000.jpg,a plate of food",  # 1: yes (relative to the index's root folder)
        f"{trip / 'photo_001.jpg'},a red car",  # 2: no, the worst
        "trip/photo_002.jpg,two dogs",  # 3: no, milder
        "trip/missing.jpg,a cat",  # 4: not in the index
        f"{plain_env / 'outside.jpg'},maybe a tree",  # 5: a picture, but not in the index
        'home/photo_003.jpg,"   "',  # 6: empty text
        "home/photo_004.jpg,a red car,extra",  # 7: three columns
        ",no path at all",  # 8
        "../../../etc/passwd,secrets",  # 9: not in the index, never opened
        "home/photo_004.jpg,maybe a tree",  # 10: maybe
    ]
    reranker = TextReranker()
    page = run_view("Audit", fake_engine(reranker))
    assert page.selectbox(key="audit-base").value == str(plain_env / "photos")
    assert not page.dataframe and "Example row" in page.caption[0].value
    upload = ("\n".join(lines) + "\n").encode()
    page.file_uploader(key="pairs").set_value(("pairs.csv", upload, "text/csv")).run()
    assert not page.exception and not page.error
    summary = "**10 rows**: 1 yes, 2 no, 1 maybe, 6 errors · judged by `text-reranker`"
    assert summary in text_of(page)
    table = page.dataframe[0].value
    assert list(table.columns) == ["line", "verdict", "P(yes)", "P(no)", "P(maybe)", "path",
                                   "text", "stored caption", "error"]  # fmt: skip
    assert list(table["line"]) == [4, 5, 6, 7, 8, 9, 2, 3, 10, 1]  # errors, then worst first
    assert list(table["verdict"]) == ["error"] * 6 + ["no", "no", "maybe", "yes"]
    errors = dict(zip(table["line"], table["error"], strict=True))
    assert [errors[n] for n in range(4, 10)] == [
        "not in the index", "not in the index", "empty text",
        "expected 2 columns (path,text), found 3", "no path", "not in the index",
    ]  # fmt: skip
    judged = table[table["line"] == 2].iloc[0]
    assert (judged["P(yes)"], judged["P(no)"], judged["P(maybe)"]) == (0.05, 0.90, 0.05)
    assert judged["stored caption"] == "a picture of 640x480 pixels"
    assert judged["path"] == str(trip / "photo_001.jpg")
    assert reranker.pictures == 4  # the picture outside the index was never judged
    report = list(csv.reader(io.StringIO(downloads["pairs-report.csv"].decode())))
    assert tuple(report[0]) == REPORT_COLUMNS
    assert [int(row[0]) for row in report[1:]] == list(table["line"])
    assert [row[-1] for row in report[1:7]] == [errors[n] for n in range(4, 10)]

    page.file_uploader(key="pairs").set_value(("latin.csv", "café,é".encode("latin-1"),
                                               "text/csv")).run()  # fmt: skip
    assert page.error[0].value == "latin.csv is not UTF-8 text; save it as UTF-8 CSV"
    assert not page.dataframe


def test_audit_with_the_tiny_entailment_model_and_without_it(tmp_path, monkeypatch, tiny_clip,
                                                             tiny_ofa_entailment):  # fmt: skip
    photos = tmp_path / "photos"
    for n, folder in enumerate(("trip", "home")):
        (photos / folder).mkdir(parents=True)
        scene(n).save(photos / folder / f"photo_{n}.jpg")
    build(photos, tmp_path / "index", tiny_clip_models(tiny_clip))
    pairs = ("path,text,notes\ntrip/photo_0.jpg,a red car,x\nhome/photo_1.jpg,a boat,\n"
             "trip/gone.jpg,a dog,\n")  # fmt: skip
    monkeypatch.setenv("INDEXER_HOME", str(tmp_path / "index"))
    monkeypatch.setenv("INDEXER_RERANK_MODEL", tiny_ofa_entailment)
    monkeypatch.setenv("INDEXER_DEVICE", "cpu")
    page = run_view("Audit")
    page.file_uploader(key="pairs").set_value(("pairs.csv", pairs.encode(), "text/csv")).run()
    assert not page.exception and not page.error
    table = page.dataframe[0].value
    assert list(table["line"])[0] == 4 and table["error"].iloc[0] == "not in the index"
    judged = table.iloc[1:]
    assert sorted(judged["line"]) == [2, 3]
    assert set(judged["verdict"]) <= {"yes", "maybe", "no"}
    sums = judged["P(yes)"] + judged["P(no)"] + judged["P(maybe)"]
    assert all(abs(total - 1) < 1e-4 for total in sums)
    assert list(judged["P(no)"]) == sorted(judged["P(no)"], reverse=True)
    assert f"judged by `{tiny_ofa_entailment}`" in text_of(page)

    st.cache_resource.clear()  # a new server whose reranker cannot be loaded
    monkeypatch.setenv("INDEXER_RERANK_MODEL", str(tmp_path / "no-such-model"))
    page = run_view("Audit")
    page.file_uploader(key="pairs").set_value(("pairs.csv", pairs.encode(), "text/csv")).run()
    [error] = page.error
    (photos / "pairs.csv").write_text(pairs)  # relative paths: from the CSV's folder
    cli = run_cli("audit", str(photos / "pairs.csv"), env=dict(os.environ), check=False)
    assert cli.returncode == 1 and cli.stderr.strip() == f"indexer: {error.value}"
    assert "no-such-model" in error.value and not page.dataframe


# --- the tag filter -------------------------------------------------------------------


@pytest.fixture
def colours(tmp_path, monkeypatch):
    """Solid-colour photos (2 red, 2 green, 1 blue) tagged red / green / blue by the colour
    embedder, which also answers the page's queries; {colour: [ids]}."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for colour, widths in {"red": (64, 80), "green": (64, 90), "blue": (70,)}.items():
        for width in widths:
            Image.new("RGB", (width, 48), COLOURS[colour]).save(photos / f"{colour}_{width}.png")
    models = ModelSet("fake-captioner", "colour-clip", FakeCaptioner, ColourEmbedder)
    build(photos, tmp_path / "index", models)
    store = IndexStore.open(tmp_path / "index")
    tag_photos(store, ColourEmbedder(), ["red", "green", "blue"])
    ids = {}
    for row in store.db.query("SELECT id, path FROM images ORDER BY id"):
        ids.setdefault(os.path.basename(row["path"]).split("_")[0], []).append(row["id"])
    store.close()
    monkeypatch.setenv("INDEXER_HOME", str(tmp_path / "index"))
    return ids


def test_tag_filter_restricts_results_and_round_trips_through_the_url(colours):
    """URL -> widget -> results here; widget -> URL is the browser's part of the binding
    (AppTest has no frontend), seen in Chromium."""
    engine = fake_engine(embedder=ColourEmbedder)
    page = run_page(engine, q="a photo", rerank="false", tag="red")
    tags = page.multiselect(key="tag")
    assert tags.options == ["green", "red", "blue"]  # the index's tags, most common first
    assert tags.value == ["red"] and sorted(shown_ids(page)) == colours["red"]
    page.multiselect(key="tag").set_value([]).run()
    assert len(shown_ids(page)) == 5
    page.multiselect(key="tag").set_value(["green"]).run()  # chosen on the page
    assert sorted(shown_ids(page)) == colours["green"]
    page = run_page(engine, q="a photo", rerank="false", tag=["green", "blue"])
    assert page.multiselect(key="tag").value == ["green", "blue"]  # tag=green&tag=blue
    assert not shown_ids(page) and page.info[0].value == "Nothing matches."  # none has both
    page = run_page(engine, q="a photo", rerank="false", tag=["blue", "purple"])
    assert page.multiselect(key="tag").value == ["blue"]  # a tag the index lacks is ignored
    assert shown_ids(page) == colours["blue"] and page.query_params["tag"] == "blue"


def test_tag_filter_is_disabled_with_a_hint_when_the_index_has_no_tags(plain_env):
    page = run_page(fake_engine(), q="a photo", rerank="false", tag="beach")
    tags = page.multiselect(key="tag")
    assert tags.disabled and tags.options == [] and tags.value == []
    assert any("indexer tag --labels" in c.value for c in page.caption)
    assert "tag" not in page.query_params and len(shown_ids(page)) == 5
