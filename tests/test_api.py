"""The HTTP API (`indexer serve`) on a real server on a loopback port, driven by httpx, with
the tiny random-weight models: every endpoint's contract, hostile requests and uploads, and
the errors (one line of JSON, never a traceback)."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from api.state import ApiOptions, Loaders
from indexer.build import build_index
from indexer.config import load_settings
from indexer.models import models_from_settings
from search.engine import SearchEngine
from testing.photos import write_photos
from tests.api_server import client, running

pytestmark = pytest.mark.slow


class FakeAnswerer:
    name = "fake-vqa"

    def answer(self, picture, question):
        return f"{picture.size[0]}x{picture.size[1]}: {question.strip()}?"


@pytest.fixture(scope="module")
def library(tmp_path_factory, tiny_clip, tiny_ofa_caption, tiny_ofa_entailment):
    root = tmp_path_factory.mktemp("api")
    write_photos(root / "photos", 12)
    models = {"clip_model": tiny_clip, "caption_model": tiny_ofa_caption,
              "rerank_model": tiny_ofa_entailment, "device": "cpu", "ocr": False}  # fmt: skip
    settings = load_settings({"index_dir": root / "index", **models}, environ={})
    build_index([root / "photos"], settings.index_dir, models_from_settings(settings),
                captions="now", read_text=None)  # fmt: skip
    return settings


@pytest.fixture(scope="module")
def api(library):
    options = ApiOptions(max_upload_mb=2)
    with running(library, options, Loaders(answerer=FakeAnswerer)) as base, client(base) as http:
        yield http


def jpeg(size=(120, 90), colour=(200, 40, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG", quality=90)
    return out.getvalue()


def one_line_error(answer, status: int) -> str:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert list(body) == ["error"]
    assert "\n" not in body["error"] and "Traceback" not in body["error"]
    return body["error"]


def test_health_and_status(api):
    assert api.get("/health").json() == {"ok": True}
    status = api.get("/status").json()
    assert status["indexed"] == 12 and status["queue"]["limit"] == 8
    assert set(status["models_loaded"]) == {"clip", "captioner", "judge", "answerer"}
    assert "failures" not in status  # file paths stay out of it


def test_search_answers_what_the_cli_answers(api, library):
    answer = api.get("/search", params={"q": "a red car", "k": 5, "rerank": "false"})
    assert answer.status_code == 200
    body = answer.json()
    engine = SearchEngine(library.index_dir)
    expected = engine.search("a red car", k=5, rerank=False).as_dict()
    engine.close()
    assert body.keys() == expected.keys()
    assert [hit["id"] for hit in body["results"]] == [hit["id"] for hit in expected["results"]]
    assert api.get("/status").json()["models_loaded"]["clip"]


def test_a_reranked_search_and_the_page_parameters(api):
    body = api.get("/search", params={"q": "a red car", "k": 4, "top": 2, "rejected": "true",
                                      "sort": "date", "orient": "any"}).json()  # fmt: skip
    assert body["reranked"] and len(body["results"]) <= 4
    assert sum("verdict" in hit for hit in body["results"]) == 2  # the top two were judged
    first = body["results"][0]["id"]
    like = api.get("/search", params={"like": first, "k": 3}).json()
    assert first not in [hit["id"] for hit in like["results"]] and like["results"]
    filtered = api.get("/search", params={"q": "car", "rerank": "false", "has_text": "true"})
    assert filtered.json()["results"] == []  # OCR was off: no photo has text


def test_search_by_an_uploaded_picture(api):
    answer = api.post("/search/image", files={"image": ("x.jpg", jpeg(), "image/jpeg")},
                      params={"k": 3})  # fmt: skip
    assert answer.status_code == 200 and len(answer.json()["results"]) == 3


def test_a_photo_record_and_its_thumbnail(api, library):
    hit = api.get("/search", params={"q": "car", "k": 1, "rerank": "false"}).json()["results"][0]
    record = api.get(f"/photos/{hit['id']}").json()
    assert record["path"] == hit["path"] and record["caption"] == hit["caption"]
    assert record["tags"] == [] and record["text"] == "" and record["width"] > 0
    thumb = api.get(f"/photos/{hit['id']}/thumbnail", params={"size": 320})
    assert thumb.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(thumb.content)).size) <= 320
    one_line_error(api.get(f"/photos/{hit['id']}/thumbnail", params={"size": 500}), 422)


@pytest.mark.parametrize("path", ["/photos/999999", "/photos/../../etc/passwd",
                                  "/photos/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/photos/-1",
                                  "/photos/1%2F..%2F..%2Fetc/thumbnail"])  # fmt: skip
def test_path_like_ids_find_nothing(api, path):
    answer = api.get(path)
    assert answer.status_code in (404, 422), answer.text
    one_line_error(answer, answer.status_code)


def test_caption_of_an_upload_is_not_indexed(api):
    before = api.get("/status").json()["indexed"]
    answer = api.post("/caption", files={"image": ("p.jpg", jpeg(), "image/jpeg")})
    body = answer.json()
    assert answer.status_code == 200 and body["caption"] and body["model"]
    assert api.get("/status").json()["indexed"] == before


def test_entail_one_and_a_batch(api):
    files = {"image": ("p.jpg", jpeg(), "image/jpeg")}
    body = api.post("/entail", files=files, data={"text": "a red square"}).json()
    assert body["verdict"] in ("yes", "no", "maybe") and body["model"]
    assert abs(body["p_yes"] + body["p_no"] + body["p_maybe"] - 1) < 1e-4
    chinese = api.post("/entail", files=files, data={"text": "红色的正方形"}).json()
    assert chinese["verdict"] is None and "Chinese" in chinese["not_judged"]
    pairs = [("images", ("a.jpg", jpeg(), "image/jpeg")),
             ("images", ("b.jpg", b"no", "image/jpeg")),
             ("images", ("c.jpg", jpeg(colour=(0, 0, 200)), "image/jpeg"))]  # fmt: skip
    answer = api.post("/entail/batch", files=pairs,
                      data={"texts": ["a red square", "a dog", "a blue square"]})  # fmt: skip
    assert answer.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in answer.text.splitlines()]
    assert [line["index"] for line in lines] == [0, 1, 2]
    assert lines[0]["verdict"] and lines[2]["verdict"] and "error" in lines[1]
    one_line_error(api.post("/entail/batch", files=pairs[:2], data={"texts": ["one"]}), 400)


def test_audit_of_a_csv_judges_only_indexed_photos(api):
    hit = api.get("/search", params={"q": "car", "k": 1, "rerank": "false"}).json()["results"][0]
    csv = f"path,text\n{hit['path']},a red car\n/etc/passwd,a file\n"
    report = api.post("/audit", files={"pairs": ("pairs.csv", csv, "text/csv")}).json()
    rows = {row["path"]: row for row in report["rows"]}
    assert rows[hit["path"]]["verdict"] in ("yes", "no", "maybe")
    assert rows["/etc/passwd"]["error"] == "not in the index" and report["summary"]["rows"] == 2
    as_csv = api.post("/audit", files={"pairs": ("p.csv", csv, "text/csv")},
                      params={"format": "csv"})  # fmt: skip
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert "not in the index" in as_csv.text


def test_ask_a_photo(api):
    hit = api.get("/search", params={"q": "car", "k": 1, "rerank": "false"}).json()["results"][0]
    body = api.post(f"/photos/{hit['id']}/ask", data={"question": "what colour"}).json()
    assert body["answer"].endswith("what colour?") and body["model"] == "fake-vqa"
    one_line_error(api.post("/photos/999999/ask", data={"question": "what"}), 404)


def _bomb() -> bytes:
    out = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(out, "PNG")  # 400 megapixels in a few kB
    return out.getvalue()


@pytest.mark.parametrize("name, data, status", [
    ("empty.jpg", b"", 400), ("text.jpg", b"just some text, named .jpg", 422),
    ("truncated.jpg", jpeg((400, 300))[:600], 422), ("bomb.png", _bomb(), 422),
    ("big.jpg", b"\xff" * (3 * 1024 * 1024), 413),
])  # fmt: skip
def test_hostile_uploads_get_a_one_line_4xx(api, name, data, status):
    answer = api.post("/caption", files={"image": (name, data, "image/jpeg")})
    one_line_error(answer, status)
    assert api.get("/health").json() == {"ok": True}  # the server is still there


def test_bad_parameters_are_one_line_4xx(api):
    one_line_error(api.get("/search", params={"q": "x", "k": 0}), 422)
    one_line_error(api.get("/search", params={"q": "x", "from": "yesterday"}), 422)
    one_line_error(api.get("/search"), 400)
    one_line_error(api.post("/entail", files={"image": ("p.jpg", jpeg(), "image/jpeg")}), 422)


def test_ask_with_the_tiny_vqa_model(library, tiny_ofa_vqa):
    """The real pipeline behind /photos/{id}/ask: the answer is the model's answer about the
    photo's detail picture, the one the page asks about."""
    from indexer.store import IndexStore
    from indexer.thumbnails import DETAIL_SIZE, thumbnail
    from search.ask import OfaQuestionAnswerer

    with running(library, ApiOptions(vqa_model=tiny_ofa_vqa)) as base, client(base) as http:
        answer = http.post("/photos/3/ask", data={"question": "what is in the picture"})
        assert answer.status_code == 200, answer.text
        one_line_error(http.post("/photos/3/ask", data={"question": "   "}), 400)
    store = IndexStore.open(library.index_dir)
    with Image.open(thumbnail(store, 3, DETAIL_SIZE)) as opened:
        picture = opened.convert("RGB")
    store.close()
    answerer = OfaQuestionAnswerer(tiny_ofa_vqa, device="cpu")
    direct = answerer.answer(picture, "what is in the picture")
    assert answer.json()["answer"] == direct and direct
