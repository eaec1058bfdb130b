"""The search page's states, through Streamlit's AppTest, on an index built with the tiny models.

Most tests run ui/app.py as `streamlit run` would, with the reranker named by
$INDEXER_RERANK_MODEL (the tiny OFA). Those that need verdicts the tiny model cannot be
made to give pass a scripted reranker through the page's seam, `main(make_engine=...)`;
one that looks at the page while the reranker judges records what the page sends (`sent`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.runtime.forward_msg_queue import ForwardMsgQueue
from streamlit.runtime.scriptrunner_utils.script_run_context import ScriptRunContext
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import parse_tree_from_messages

from indexer.build import build_index
from indexer.config import load_settings
from indexer.models import models_from_settings
from indexer.store import IndexStore
from indexer.thumbnails import GRID_SIZE, ThumbnailError, thumbnail
from search.engine import SearchEngine
from search.rerank import Judgement
from testing.photos import scene, write_photos
from tests.conftest import run_cli
from tests.fakes import fake_models

# builds models or indexes, runs the CLI or a server: seconds to minutes
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("fresh_page_server")]

APP = Path(__file__).resolve().parent.parent / "ui" / "app.py"
DAY = 86_400


@pytest.fixture(scope="module")
def library(tmp_path_factory, tiny_clip, tiny_ofa_caption):
    """9 photos: trip/ (5, file times 40 days apart from 2020-09-13), home/ (4, a portrait
    picture, one with an EXIF date), indexed with the tiny CLIP and OFA caption models."""
    root = tmp_path_factory.mktemp("ui")
    photos = root / "photos"
    for n, path in enumerate(write_photos(photos / "trip", 5)):
        os.utime(path, ns=(0, (1_600_000_000 + n * 40 * DAY) * 10**9))
    write_photos(photos / "home", 2, start=10)
    Image.new("RGB", (300, 600), (200, 30, 30)).save(photos / "home" / "tall.jpg")
    exif = Image.Exif()
    exif[0x0132] = "2019:05:04 10:00:00"
    scene(20).save(photos / "home" / "taken.jpg", exif=exif)
    models = {"clip_model": tiny_clip, "caption_model": tiny_ofa_caption, "device": "cpu"}
    settings = load_settings({"index_dir": root / "index", **models}, environ={})
    assert build_index([photos], settings.index_dir, models_from_settings(settings)).new == 9
    store = IndexStore.open(settings.index_dir)
    ids = {os.path.relpath(row["path"], photos): row["id"]
           for row in store.db.query("SELECT id, path FROM images")}  # fmt: skip
    store.close()
    return SimpleNamespace(photos=photos, index=settings.index_dir, ids=ids)


@pytest.fixture
def page_env(library, tiny_ofa_entailment, monkeypatch):
    monkeypatch.setenv("INDEXER_HOME", str(library.index))
    monkeypatch.setenv("INDEXER_RERANK_MODEL", tiny_ofa_entailment)
    monkeypatch.setenv("INDEXER_DEVICE", "cpu")
    return library


def _page(make_engine):
    from ui.app import main

    main(make_engine=make_engine)


def run_page(make_engine=None, **params) -> AppTest:
    """The page opened at `/?PARAMS`, after its first run."""
    if make_engine is None:
        page = AppTest.from_file(str(APP), default_timeout=60)
    else:
        page = AppTest.from_function(_page, kwargs={"make_engine": make_engine},
                                     default_timeout=60)  # fmt: skip
    page.query_params.update(params)
    page.run()
    assert not page.exception, page.exception
    return page


def shown_ids(page) -> list[int]:
    keys = [button.key for button in page.button]
    return [int(key.removeprefix("details-")) for key in keys if key.startswith("details-")]


def badges(page) -> list[tuple[str, float]]:
    """(badge label, score) of each result card, in order."""
    pattern = r":\w+-badge\[(.+)\] (?:score|similarity) (\S+)"
    found = [re.fullmatch(pattern, m.value) for m in page.markdown]
    return [(m[1], float(m[2])) for m in found if m]


def text_of(page) -> str:
    return "\n".join(m.value for m in page.markdown)


class Scripted:
    """A reranker that gives the n-th picture of each batch the n-th judgement (cycling)."""

    name = "scripted"

    def __init__(self, *judgements: Judgement) -> None:
        self.judgements = judgements

    def judge(self, images, text):
        return [self.judgements[n % len(self.judgements)] for n in range(len(images))]


def engine_with(reranker):
    """A `make_engine` for the page: the index's own (tiny) CLIP, a scripted reranker."""

    def make_engine(settings, rerank):
        return SearchEngine(settings.index_dir, load_reranker=lambda: reranker, device="cpu")

    return make_engine


class Watching(Scripted):
    """A scripted reranker that notes, each time it is asked, what the page had sent to the
    browser by then (as the element tree the sent messages make)."""

    def __init__(self, sent: list[ForwardMsg], *judgements: Judgement) -> None:
        super().__init__(*judgements)
        self.sent, self.seen = sent, []

    def judge(self, images, text):
        queue = ForwardMsgQueue()  # a later message for a place replaces the earlier one
        for msg in self.sent:
            queue.enqueue(msg)
        self.seen.append(parse_tree_from_messages(queue.flush()))
        return super().judge(images, text)


@pytest.fixture
def sent(monkeypatch) -> list[ForwardMsg]:
    """Every message the page sends to the browser, as it sends it."""
    messages = []
    enqueue = ScriptRunContext.enqueue

    def recording(self, msg):
        copy = ForwardMsg()
        copy.CopyFrom(msg)
        messages.append(copy)
        enqueue(self, msg)

    monkeypatch.setattr(ScriptRunContext, "enqueue", recording)
    return messages


def expected(index, reranker, query, k, top, sort="relevance"):
    """What `engine.search` with rerank answers, as the page's cards show it: (ids, badges)."""
    engine = SearchEngine(index, load_reranker=lambda: reranker, device="cpu")
    try:
        result = engine.search(query, k=k, rerank=True, rerank_top=top, sort=sort)
        retrieved = engine.retrieve(query, k, top)
    finally:
        engine.close()
    labels = [(f"{h.verdict} · rejected" if h.rejected else h.verdict) or "not reranked"
              for h in result.hits]  # fmt: skip
    marks = list(zip(labels, (round(h.score, 3) for h in result.hits), strict=True))
    return [h.id for h in result.hits], marks, result, retrieved


def test_url_query_runs_the_search_and_shows_the_grid(page_env):
    page = run_page(q="a red car", k="6", top="4")
    assert page.text_input(key="q").value == "a red car"
    assert (page.number_input(key="k").value, page.number_input(key="top").value) == (6, 4)
    ids = shown_ids(page)
    assert len(ids) == 6 and len(page.image) == 6
    labels = [label for label, _ in badges(page)]
    assert all(label in ("yes", "maybe", "no") for label in labels[:4])
    assert labels[4:] == ["not reranked", "not reranked"]
    assert "**6 photos for “a red car”** · the top 4 reranked" in text_of(page)
    assert page.query_params == {"q": "a red car", "k": "6", "top": "4"}
    store = IndexStore.open(page_env.index)  # thumbnails, small, cached under the index
    for image_id in ids:
        made = page_env.index / "thumbnails" / f"{image_id}-{store.image(image_id)['hash']}-320.jpg"
        with Image.open(made) as picture:
            assert max(picture.size) <= GRID_SIZE
    store.close()
    assert run_page().caption[0].value.startswith("Type what the photos should show")


def test_a_banner_says_what_the_library_is(page_env, monkeypatch):
    monkeypatch.setenv("INDEXER_BANNER", "Demo: synthetic pictures of shapes")
    page = run_page()
    assert [info.value for info in page.info][:1] == ["Demo: synthetic pictures of shapes"]


def test_models_load_once_per_server(page_env):
    from search.engine import make_engine as real

    made = []

    def make_engine(settings, rerank):
        made.append(settings.index_dir)
        return real(settings, rerank)

    for query in ("a red car", "a boat on a lake"):  # two sessions of one server
        page = run_page(make_engine, q=query, k="3", top="2")
        assert len(shown_ids(page)) == 3
    assert made == [page_env.index]


def test_verdict_badges_and_hidden_rejections(page_env):
    mixed = Scripted(Judgement(0.7, 0.1, 0.2), Judgement(0.2, 0.3, 0.5),
                     Judgement(0.1, 0.6, 0.3), Judgement(0.05, 0.9, 0.05))  # fmt: skip
    page = run_page(engine_with(mixed), q="a boat", k="6", top="4")
    assert badges(page)[:3] == [("yes", 0.7), ("maybe", 0.2), ("no", 0.1)]
    assert [label for label, _ in badges(page)[3:]] == ["not reranked", "not reranked"]
    assert "1 rejected by the reranker and hidden" in text_of(page)
    page.toggle(key="rejected").set_value(True).run()
    assert badges(page)[3] == ("no · rejected", 0.05)


def test_retrieved_hits_show_before_the_reranker_judges_them(page_env, sent):
    rising = Scripted(*(Judgement(p, 0.1, 0.9 - p) for p in (0.5, 0.6, 0.7, 0.8)))
    ids, marks, _, retrieved = expected(page_env.index, rising, "a boat", k=6, top=4)
    watching = Watching(sent, *rising.judgements)
    page = run_page(engine_with(watching), q="a boat", k="6", top="4")
    [early] = watching.seen  # judged once, and by then the page showed the retrieved hits
    keys = [button.key for button in early.button if button.key.startswith("early-details-")]
    assert [int(key.removeprefix("early-details-")) for key in keys] == [
        hit.id for hit in retrieved.hits[:6]
    ]
    assert len(early.image) == 6
    assert [label for label, _ in badges(early)] == ["judging…"] * 4 + ["not reranked"] * 2
    assert "**6 photos for “a boat”** · judging the top 4…" in text_of(early)
    assert shown_ids(page) == ids != [hit.id for hit in retrieved.hits[:6]]  # reordered
    assert badges(page) == marks and len(page.image) == 6
    assert "**6 photos for “a boat”** · the top 4 reranked" in text_of(page)
    assert "judging" not in text_of(page)
    assert not [button.key for button in page.button if button.key.startswith("early-")]
    page.run()  # the answer is kept: another run shows it without judging again
    assert len(watching.seen) == 1 and shown_ids(page) == ids and badges(page) == marks


@pytest.mark.parametrize("sort", ["relevance", "date"])
def test_the_judged_page_is_what_search_with_rerank_answers(page_env, sort):
    mixed = Scripted(Judgement(0.2, 0.3, 0.5), Judgement(0.05, 0.9, 0.05),
                     Judgement(0.7, 0.1, 0.2), Judgement(0.1, 0.6, 0.3))  # fmt: skip
    ids, marks, result, retrieved = expected(page_env.index, mixed, "a red car", 6, 4, sort)
    assert result.rejected == 1 and len(ids) == 5 < len(retrieved.hits)  # one card fewer
    page = run_page(engine_with(mixed), q="a red car", k="6", top="4", sort=sort)
    assert shown_ids(page) == ids and badges(page) == marks
    keys = [button.key for button in page.button]  # no card of the first showing left behind
    assert len(page.image) == 5 and len(keys) == 2 * 5 and not any("early" in k for k in keys)
    heading = "**5 photos for “a red car”** · the top 4 reranked · 1 rejected by the reranker"
    assert heading in text_of(page) and "judging" not in text_of(page)


def test_nothing_matches_when_the_reranker_rejects_everything(page_env):
    page = run_page(engine_with(Scripted(Judgement(0.02, 0.95, 0.03))), q="a giraffe", top="5")
    assert [info.value for info in page.info] == [
        "Nothing matches. The reranker rejected 5 candidates; turn on “Show rejected” to see them."
    ]
    assert not page.image and not shown_ids(page)
    page.toggle(key="rejected").set_value(True).run()
    assert badges(page) == [("no · rejected", 0.02)] * 5


def test_model_not_available_says_what_the_cli_says(page_env, monkeypatch, tmp_path):
    monkeypatch.setenv("INDEXER_RERANK_MODEL", str(tmp_path / "no-such-model"))
    page = run_page(q="a red car")
    [error] = page.error
    cli = run_cli("search", "a red car", env=dict(os.environ), check=False)
    assert cli.returncode == 1 and cli.stderr.strip() == f"indexer: {error.value}"
    assert "no-such-model" in error.value and not page.image
    page.toggle(key="rerank").set_value(False).run()  # the search still works without it
    assert not page.error and len(shown_ids(page)) == 9


def test_no_index_yet_names_the_command_and_an_empty_one_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("INDEXER_HOME", str(tmp_path / "none"))
    page = run_page(q="a red car")
    assert page.info[0].value.startswith(f"No index yet in `{tmp_path / 'none'}`")
    assert page.code[0].value == f"indexer build ~/Pictures --index {tmp_path / 'none'}"
    assert not page.text_input and not page.image
    (tmp_path / "empty_photos").mkdir()
    build_index([tmp_path / "empty_photos"], tmp_path / "empty", fake_models())
    monkeypatch.setenv("INDEXER_HOME", str(tmp_path / "empty"))
    page = run_page(q="a red car")
    assert "is empty; run `indexer build" in page.error[0].value


def test_a_first_build_that_has_not_committed_yet_is_named(tmp_path, monkeypatch):
    from indexer.lock import WriterLock

    for created in (False, True):  # before and after the build made the database
        index = tmp_path / f"index-{created}"
        monkeypatch.setenv("INDEXER_HOME", str(index))
        with WriterLock(index).held():
            if created:
                IndexStore.open(index, create=True).close()
            page = run_page(q="a red car")
        shown = [*(m.value for m in page.info), *(m.value for m in page.error)]
        assert any("is running" in text and "nothing is indexed yet" in text for text in shown), (
            shown
        )


def test_detail_view_and_back(page_env):
    page = run_page(q="a red car", k="4", top="2")
    first = shown_ids(page)[0]
    page.button(key=f"details-{first}").click().run()
    assert page.query_params["photo"] == str(first)
    store = IndexStore.open(page_env.index)
    row = store.image(first)
    store.close()
    assert [code.value for code in page.code] == [row["path"]]
    text = text_of(page)
    assert "640 × 480 pixels · " in text and f"file time: {row['date'].replace('T', ' ')}" in text
    assert re.search(r"\| entailment \| (yes|maybe|no)", text) and "| CLIP similarity |" in text
    assert "**Why it matched:** caption" in text and len(page.image) == 1
    page.button(key="back").click().run()
    assert "photo" not in page.query_params and shown_ids(page)[0] == first


def test_photo_in_the_url_is_an_index_id_and_nothing_else(page_env):
    taken = page_env.ids["home/taken.jpg"]
    page = run_page(photo=str(taken))  # no query: the photo without scores
    assert [code.value for code in page.code] == [str(page_env.photos / "home" / "taken.jpg")]
    assert "taken (EXIF): 2019-05-04 10:00:00" in text_of(page)
    assert any("Open this photo from a search" in c.value for c in page.caption)
    for bad in ("../../../etc/passwd", "/etc/passwd", "1 OR 1=1", "-1"):
        page = run_page(q="a red car", photo=bad)
        assert "not a photo id" in page.warning[0].value and not page.code
        assert "photo" not in page.query_params
    page = run_page(photo="999999")
    assert page.error[0].value == "no photo with id 999999 in the index" and not page.image


def test_more_like_this_and_search_by_example(page_env):
    page = run_page(q="a red car", k="4", rerank="false")
    before = shown_ids(page)
    first = before[0]
    page.button(key=f"like-{first}").click().run()
    assert page.query_params["like"] == str(first)
    alike = shown_ids(page)
    assert len(alike) == 4 and first not in alike
    assert f"**4 photos like photo #{first}**" in text_of(page)
    assert {label for label, _ in badges(page)} == {"similar"}
    scores = [score for _, score in badges(page)]
    assert scores == sorted(scores, reverse=True)
    assert shown_ids(run_page(like=str(first), k="4")) == alike  # the URL alone does it
    page.button(key="unlike").click().run()
    assert "like" not in page.query_params and shown_ids(page) == before

    page = run_page(k="3")
    store = IndexStore.open(page_env.index)
    mine = Path(store.image(first)["path"]).read_bytes()
    store.close()
    page.file_uploader(key="example").set_value(("mine.jpg", mine, "image/jpeg")).run()
    assert shown_ids(page)[0] == first  # the same picture is its own best match
    assert "**3 photos like the uploaded picture**" in text_of(page)
    page.file_uploader(key="example").set_value(("junk.jpg", b"no picture", "image/jpeg")).run()
    assert "cannot be used: not an image" in page.warning[0].value and not page.image


def test_filters_and_sort_from_the_url(page_env):
    def paths(page):
        by_id = {image_id: path for path, image_id in page_env.ids.items()}
        return [by_id[image_id] for image_id in shown_ids(page)]

    trip = str(page_env.photos / "trip")
    page = run_page(q="a photo", rerank="false", folder=trip, sort="date")
    assert paths(page) == [f"trip/photo_{n:03d}.jpg" for n in (4, 3, 2, 1, 0)]  # newest first
    folders = page.selectbox(key="folder")
    assert folders.value == trip
    assert {str(page_env.photos), trip, str(page_env.photos / "home")} <= set(folders.options)
    page = run_page(q="a photo", rerank="false", orient="portrait")
    assert paths(page) == ["home/tall.jpg"]
    page = run_page(q="a photo", rerank="false", **{"from": "2020-10-01", "to": "2020-12-31"})
    assert sorted(paths(page)) == ["trip/photo_001.jpg", "trip/photo_002.jpg"]
    page = run_page(q="a photo", rerank="false", folder="/etc", orient="diagonal", k="lots")
    assert page.selectbox(key="folder").value == "" and len(shown_ids(page)) == 9  # ignored
    page = run_page(q="a photo", rerank="false", folder=trip)  # a filter set on the page
    page.selectbox(key="orient").set_value("portrait").run()
    assert not shown_ids(page) and page.info[0].value == "Nothing matches."


def test_thumbnails_are_made_once_per_content_and_only_by_id(tmp_path, monkeypatch):
    photos = tmp_path / "photos"
    [photo] = write_photos(photos, 1)
    build_index([photos], tmp_path / "index", fake_models())
    store = IndexStore.open(tmp_path / "index")
    [image_id] = [row["id"] for row in store.db.query("SELECT id FROM images")]
    first = thumbnail(store, image_id)
    assert first.parent == tmp_path / "index" / "thumbnails"
    assert first.name == f"{image_id}-{store.image(image_id)['hash']}-{GRID_SIZE}.jpg"
    with Image.open(first) as picture:
        assert picture.size == (320, 240)

    def no_decoding(*args, **kwargs):
        raise AssertionError("a cached thumbnail was decoded again")

    monkeypatch.setattr("indexer.thumbnails.decode_image", no_decoding)
    assert thumbnail(store, image_id) == first
    monkeypatch.undo()
    scene(500).save(photo)  # new content: a new thumbnail, the old one goes
    build_index([photos], tmp_path / "index", fake_models())
    second = thumbnail(store, image_id)
    assert second != first and second.exists() and not first.exists()
    with pytest.raises(ThumbnailError, match="no photo with id 999"):
        thumbnail(store, 999)
    photo.unlink()  # gone since the build: no thumbnail can be made for a new size
    with pytest.raises(ThumbnailError, match="photo_000.jpg"):
        thumbnail(store, image_id, 100)
    store.close()


def test_ui_command_serves_on_localhost_by_default(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from indexer.cli import main

    started = []

    def execve(path, args, env):
        started.append((args, env["INDEXER_HOME"]))
        raise SystemExit(0)

    monkeypatch.setattr("ui.cli.os.execve", execve)
    runner = CliRunner()
    assert "Example:" in runner.invoke(main, ["ui", "--help"]).output
    done = runner.invoke(main, ["ui", "--index", str(tmp_path / "idx"), "--port", "8600"])
    assert done.exit_code == 0, done.output
    args, home = started[-1]
    assert args[1:5] == ["-m", "streamlit", "run", str(APP)] and home == str(tmp_path / "idx")
    options = dict(zip(args[5::2], args[6::2], strict=True))
    assert options["--server.address"] == "127.0.0.1" and options["--server.port"] == "8600"
    assert options["--server.headless"] == "true"
    assert options["--browser.gatherUsageStats"] == "false"
    done = runner.invoke(main, ["ui", "--host", "0.0.0.0"])
    assert started[-1][0][started[-1][0].index("--server.address") + 1] == "0.0.0.0"
    assert "anyone who can reach port 8501" in done.output


def test_a_query_the_reranker_cannot_read_is_shown_unjudged_with_why(page_env):
    loads = []

    def make_engine(settings, rerank):
        def load():
            loads.append(1)
            return Scripted(Judgement(0.01, 0.98, 0.01))  # would reject everything

        return SearchEngine(settings.index_dir, load_reranker=load, device="cpu")

    page = run_page(make_engine, q="红色的圆形", k="4")
    assert loads == [] and len(shown_ids(page)) == 4
    notes = " ".join(caption.value for caption in page.caption)
    assert "Note: not reranked" in notes  # escaped for markdown after these words
    assert "the text is in Chinese and the judge reads English" in notes
    assert "nothing matches" not in (text_of(page) + notes).lower()
