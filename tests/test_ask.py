"""Asking about a photo through the real ModelScope visual-question-answering pipeline, on a
tiny random-weight OFA folder (testing/models.py, task "vqa")."""

from __future__ import annotations

import pytest

from indexer.errors import ModelUnavailable
from search.ask import DEFAULT_VQA_MODEL, OfaQuestionAnswerer, QuestionAnswerer
from testing.photos import scene

# builds models or indexes, runs the CLI or a server: seconds to minutes
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def answerer(tiny_ofa_vqa) -> OfaQuestionAnswerer:
    return OfaQuestionAnswerer(tiny_ofa_vqa, device="cpu")


def test_the_tiny_folder_loads_offline_and_answers(answerer, tiny_ofa_vqa):
    assert isinstance(answerer, QuestionAnswerer) and answerer.name == tiny_ofa_vqa
    picture = scene(3, (160, 120))
    first = answerer.answer(picture, "What colour is the car?")
    assert first and first == first.strip() and "\n" not in first
    assert answerer.answer(picture, "What colour is the car?") == first  # beam search: no dice
    # the pipeline lower-cases the question and adds the "?" itself
    assert answerer.answer(picture, "  what COLOUR is\tthe car ") == first


def test_a_greyscale_picture_is_answered_too(answerer):
    assert answerer.answer(scene(5, (96, 64)).convert("L"), "is there a dog?")


@pytest.mark.parametrize("question", ["", "   ", "\n\t"])
def test_an_empty_question_is_refused_in_one_line(answerer, question):
    with pytest.raises(ValueError) as refused:
        answerer.answer(scene(1), question)
    assert "question is empty" in str(refused.value) and "\n" not in str(refused.value)


def test_an_overly_long_question_is_refused(answerer):
    answerer.answer(scene(1), "is it red " * 20)  # 199 characters once stripped
    with pytest.raises(ValueError, match=r"201 characters long; ask in at most 200"):
        answerer.answer(scene(1), "x" * 201)


def test_a_folder_without_configuration_json_is_unavailable(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelUnavailable) as missing:
        OfaQuestionAnswerer(str(tmp_path), device="cpu")
    message = str(missing.value)
    assert "\n" not in message and "question-answering model folder" in message
    assert "has no configuration.json" in message and "--vqa-model" in message


def test_the_default_model_offline_and_not_cached_is_unavailable(monkeypatch, tmp_path):
    monkeypatch.setenv("INDEXER_OFFLINE", "1")
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(ModelUnavailable) as missing:
        OfaQuestionAnswerer(DEFAULT_VQA_MODEL, device="cpu")
    message = str(missing.value)
    assert "\n" not in message and DEFAULT_VQA_MODEL in message and "offline" in message
