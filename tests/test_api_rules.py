"""The API's rules: the token, the model queue (503 with Retry-After, never a pile-up), a
model that cannot load (a one-line 503), the exposure rule of `indexer serve`, and searches
that keep answering while a build runs."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time

import pytest
from click.testing import CliRunner
from PIL import Image

from api.cli import check_exposure, is_loopback
from api.gate import Busy, ModelGate
from api.state import ApiOptions, Loaders
from indexer.build import build_index
from indexer.cli import main
from indexer.config import load_settings
from search.rerank import Judgement
from testing.photos import write_photos
from tests.api_server import client, running
from tests.fakes import FakeCaptioner, FakeEmbedder


def picture() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 30)).save(out, "PNG")
    return out.getvalue()


class SlowJudge:
    name = "slow-judge"

    def __init__(self) -> None:
        self.calls = 0

    def judge(self, images, text):
        self.calls += 1
        time.sleep(0.5)
        return [Judgement(0.7, 0.2, 0.1) for _ in images]


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    root = tmp_path_factory.mktemp("api-rules")
    write_photos(root / "photos", 6)
    settings = load_settings({"index_dir": root / "index", "device": "cpu", "ocr": False},
                             environ={})  # fmt: skip
    from indexer.models import ModelSet

    captioner, embedder = FakeCaptioner(), FakeEmbedder()
    models = ModelSet(captioner.name, embedder.name, lambda: captioner, lambda: embedder,
                      captioner, embedder)  # fmt: skip
    build_index([root / "photos"], settings.index_dir, models, read_text=None)
    return settings


def fakes(**more) -> Loaders:
    return Loaders(embedder=lambda spec: FakeEmbedder(spec), **more)


def test_a_token_guards_every_endpoint_but_health(settings):
    with running(settings, ApiOptions(token="s3cret"), fakes()) as base:
        with client(base) as anonymous, client(base, token="wrong") as wrong:
            assert anonymous.get("/health").status_code == 200
            for answer in (anonymous.get("/search", params={"q": "x"}), wrong.get("/status"),
                           anonymous.get("/docs"), anonymous.get("/openapi.json")):  # fmt: skip
                assert answer.status_code == 401 and "token" in answer.json()["error"]
                assert answer.headers["www-authenticate"] == "Bearer"
        with client(base, token="s3cret") as allowed:
            assert allowed.get("/search", params={"q": "x", "rerank": "false"}).status_code == 200
            assert "/entail" in allowed.get("/openapi.json").json()["paths"]


def test_beyond_loopback_needs_a_token():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
    check_exposure("127.0.0.1", None)
    check_exposure("0.0.0.0", "s3cret")
    with pytest.raises(ValueError, match="needs a token"):
        check_exposure("0.0.0.0", None)
    done = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0"], env={"INDEXER_API_TOKEN": ""})
    assert done.exit_code != 0 and "needs a token" in done.output
    assert len(done.output.strip().splitlines()) == 1


def test_a_full_model_queue_answers_503_with_retry_after(settings):
    judge = SlowJudge()
    options = ApiOptions(queue_limit=1)
    with running(settings, options, fakes(judge=lambda: judge)) as base, client(base) as http:
        answers, threads = [], []

        def entail():
            answers.append(http.post("/entail", files={"image": ("p.png", picture())},
                                     data={"text": "a green thing"}))  # fmt: skip

        for _ in range(4):
            threads.append(threading.Thread(target=entail))
            threads[-1].start()
        for thread in threads:
            thread.join(30)
        statuses = sorted(answer.status_code for answer in answers)
        refused = [answer for answer in answers if answer.status_code == 503]
        assert statuses.count(200) >= 2 and refused, statuses  # one running, one waiting
        assert all(answer.headers["retry-after"] == "2" for answer in refused)
        assert http.get("/status").json()["queue"]["refused"] == len(refused)
    assert judge.calls == statuses.count(200)


def test_the_gate_itself():
    gate = ModelGate(limit=0)
    with gate.turn(), gate.turn():  # re-entrant in one thread
        failed = []
        thread = threading.Thread(target=lambda: failed.append(_try(gate)))
        thread.start()
        thread.join(5)
    assert failed == ["busy"] and gate.refused == 1


def _try(gate: ModelGate) -> str:
    try:
        with gate.turn():
            return "ran"
    except Busy:
        return "busy"


def test_a_model_that_cannot_load_is_a_one_line_503(settings, tmp_path):
    missing = str(tmp_path / "no-such-model")
    broken = load_settings({"index_dir": settings.index_dir, "device": "cpu",
                            "caption_model": missing}, environ={})  # fmt: skip
    with running(broken, ApiOptions(), fakes()) as base, client(base) as http:
        answer = http.post("/caption", files={"image": ("p.png", picture())})
        assert answer.status_code == 503
        error = answer.json()["error"]
        assert "\n" not in error and "no-such-model" in error
        assert http.get("/status").json()["models_loaded"]["captioner"] is False


@pytest.mark.slow
def test_searches_answer_during_a_build(settings, tiny_clip, tmp_path):
    """A build adds photos while the API answers searches: every search answers 200."""
    photos, index = tmp_path / "photos", tmp_path / "index"
    write_photos(photos, 4)
    real = load_settings({"index_dir": index, "device": "cpu", "clip_model": tiny_clip,
                          "ocr": False}, environ={})  # fmt: skip
    from indexer.models import models_from_settings

    build_index([photos], index, models_from_settings(real), captions="never", read_text=None)
    write_photos(photos, 60, start=4)
    env = dict(os.environ, INDEXER_HOME=str(index), INDEXER_CLIP_MODEL=tiny_clip,
               INDEXER_DEVICE="cpu", INDEXER_OCR="0", INDEXER_CAPTIONS="never")  # fmt: skip
    with running(real) as base, client(base) as http:
        build = subprocess.Popen([sys.executable, "-m", "indexer.cli", "build", str(photos),
                                  "--batch-size", "4"], env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True)  # fmt: skip
        statuses, counts = [], []
        try:
            while build.poll() is None and len(statuses) < 400:
                answer = http.get("/search", params={"q": "a photo", "k": 100, "rerank": "false"})
                statuses.append(answer.status_code)
                counts.append(len(answer.json().get("results", [])))
                time.sleep(0.05)
        finally:
            _, errors = build.communicate(timeout=300)
        assert build.returncode == 0, errors
        assert set(statuses) == {200} and len(statuses) >= 3
        final = http.get("/search", params={"q": "a photo", "k": 100, "rerank": "false"}).json()
    assert counts[0] < len(final["results"]) == 64  # the searches saw the build's photos arrive
