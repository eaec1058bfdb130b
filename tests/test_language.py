"""The judge knows what it cannot read: a query or an audit description in a language the
entailment model does not read is not judged (search.language, with py3langid's real
model), and search keeps retrieval's order with a notice instead of "nothing matches"."""

import pytest

from curate.audit import audit_pairs, parse_pairs
from indexer.build import build_index
from search.engine import SearchEngine
from search.language import text_language, unreadable
from search.rerank import Judgement
from testing.photos import write_photos
from tests.fakes import FakeEmbedder, fake_models


@pytest.mark.parametrize(
    ("text", "language"),
    [("红色的圆形", "Chinese"), ("a photo of 长城", "Chinese"), ("パン屋", "Japanese"),
     ("생일 케이크", "Korean"), ("собака на пляже", "Russian"),
     ("un chien qui court sur la plage", "French")],
)  # fmt: skip
def test_texts_the_english_judge_cannot_read_say_which_language(text, language):
    assert unreadable(text) == f"the text is in {language} and the judge reads English"


@pytest.mark.parametrize("text", ["a red circle", "a dog running on the beach", "dog",
                                  "Budapest", "open 24 hours", "OPEN24HOURS", "sushi"])  # fmt: skip
def test_english_and_short_latin_queries_are_judged(text):
    assert unreadable(text) is None


def test_a_judge_that_reads_chinese_may_judge_it():
    assert unreadable("红色的圆形", ("en", "zh")) is None
    assert text_language("红色的圆形") == "zh" and text_language("パン屋") == "ja"


class SaysNoToAll:
    """Rejects everything; counts its calls."""

    name, input_size = "says-no", None

    def __init__(self):
        self.calls = 0

    def judge(self, images, text):
        self.calls += 1
        return [Judgement(0.01, 0.98, 0.01) for _ in images]


@pytest.fixture
def index(tmp_path):
    write_photos(tmp_path / "photos", 6)
    build_index([tmp_path / "photos"], tmp_path / "index", fake_models(), read_text=None)
    return tmp_path / "index"


def test_a_chinese_query_is_not_reranked_and_keeps_its_hits_with_a_notice(index):
    judge = SaysNoToAll()
    engine = SearchEngine(index, load_embedder=lambda spec: FakeEmbedder(spec),
                          load_reranker=lambda: judge)  # fmt: skip
    chinese = engine.search("红色的圆形", k=4)
    assert judge.calls == 0 and not chinese.reranked and len(chinese.hits) == 4
    assert chinese.notices[-1:] == ["not reranked: the text is in Chinese and the judge reads "
                               "English; the hits are in retrieval order"]  # fmt: skip
    assert all(hit.verdict is None and "not reranked" in hit.why for hit in chinese.hits)
    english = engine.search("a red circle", k=4)  # reranked as before: all rejected
    engine.close()
    assert judge.calls == 1 and english.reranked and english.hits == []
    assert english.rejected == 6  # every photo among the top 10 judged


def test_the_audit_reports_descriptions_it_cannot_read_as_not_judged(index, tmp_path):
    photo = next((tmp_path / "photos").iterdir())
    rows = parse_pairs(f"path,text\n{photo},红色的圆形\n{photo},a red circle\n", tmp_path)
    judge = SaysNoToAll()
    report = audit_pairs(rows, judge)
    first, second = report.rows
    assert first.error == ("not judged: language: the text is in Chinese and the judge reads "
                           "English") and first.verdict is None  # fmt: skip
    assert second.error is None and second.verdict == "no" and judge.calls == 1
