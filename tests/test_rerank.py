"""OFA visual entailment through the real ModelScope pipeline folder, scored in batches."""

import modelscope
import pytest

from indexer.errors import ModelUnavailable
from indexer.ofa_speed.entailment import EntailmentScorer
from search.rerank import OfaEntailmentReranker
from testing.photos import scene


@pytest.fixture(scope="module")
def reranker(tiny_ofa_entailment):
    return OfaEntailmentReranker(tiny_ofa_entailment, device="cpu", batch_size=3)


@pytest.fixture(scope="module")
def pictures():
    return [scene(seed, (120, 90)) for seed in range(5)]


def test_batched_and_one_by_one_scores_agree(reranker, pictures):
    texts = ["a red car", "two dogs playing on a sunny beach", "food"]
    pairs = [(picture, text) for picture in pictures for text in texts]
    batched = reranker.probabilities(pairs)
    for pair, row in zip(pairs, batched, strict=True):
        (single,) = reranker.probabilities([pair])
        assert single == pytest.approx(row, abs=1e-5)
        assert sum(row) == pytest.approx(1.0, abs=1e-5)


def test_judgements_match_the_pipelines_own_answer(reranker, pictures):
    judgements = reranker.judge(pictures, "a red circle")
    assert len(judgements) == len(pictures)
    for picture, judgement in zip(pictures, judgements, strict=True):
        answer = reranker._pipeline({"image": picture, "text": "a red circle"})
        assert judgement.verdict == answer["labels"]
        best = max(judgement.p_yes, judgement.p_no, judgement.p_maybe)
        assert best == pytest.approx(answer["scores"], abs=1e-5)


def test_batched_scoring_needs_no_notice(reranker):
    assert reranker.notice is None


def assert_pipeline_answers(reranker, pictures, text):
    """Judgements with the pipeline's own verdicts and winning probabilities."""
    judgements = reranker.judge(pictures, text)
    assert len(judgements) == len(pictures)
    for picture, judgement in zip(pictures, judgements, strict=True):
        answer = reranker._pipeline({"image": picture, "text": text})
        assert judgement.verdict == answer["labels"]
        best = max(judgement.p_yes, judgement.p_no, judgement.p_maybe)
        assert best == pytest.approx(answer["scores"], abs=1e-5)
        assert judgement.p_yes + judgement.p_no + judgement.p_maybe == pytest.approx(1.0)
    return judgements


def test_an_unchecked_modelscope_version_gets_the_pipelines_own_answers(
    tiny_ofa_entailment, reranker, pictures, monkeypatch
):
    monkeypatch.setattr(modelscope, "__version__", "0.0.0")
    fallback = OfaEntailmentReranker(tiny_ofa_entailment, device="cpu", batch_size=3)
    assert "one-by-one" in fallback.notice and "modelscope 0.0.0" in fallback.notice
    judgements = assert_pipeline_answers(fallback, pictures, "a red circle")
    batched = reranker.judge(pictures, "a red circle")
    assert [j.verdict for j in judgements] == [j.verdict for j in batched]


def test_a_failure_of_batched_scoring_falls_back(tiny_ofa_entailment, pictures, monkeypatch):
    fallback = OfaEntailmentReranker(tiny_ofa_entailment, device="cpu", batch_size=3)
    assert fallback.notice is None

    def broken(self, pairs):
        raise KeyError("val_ans_l")

    monkeypatch.setattr(EntailmentScorer, "_answer_log_scores", broken)
    assert_pipeline_answers(fallback, pictures[:2], "two dogs")
    assert "batched scoring failed (KeyError" in fallback.notice


def test_a_caption_model_is_not_a_reranker(tiny_ofa_caption):
    with pytest.raises(ModelUnavailable):
        OfaEntailmentReranker(tiny_ofa_caption, device="cpu")


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ModelUnavailable, match="rerank model folder"):
        OfaEntailmentReranker(str(tmp_path / "nothing"), device="cpu")
