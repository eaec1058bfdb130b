"""Asking about one photo: an interface, and OFA through ModelScope's visual-question-answering
pipeline.

ModelScope's pipeline takes ``{"image": PIL image, "text": question}`` (it lower-cases the
question, adds a final "?" and beam-searches an open answer, stripped) and returns
``{"text": [answer], "samples": ..., "caption": None, "boxes": None, "labels": None,
"scores": None}``: the answer in a one-element list.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from PIL import Image

from indexer.hub import load_modelscope_pipeline

DEFAULT_VQA_MODEL = "damo/ofa_visual-question-answering_pretrain_base_en"
MAX_QUESTION_CHARS = 200


@runtime_checkable
class QuestionAnswerer(Protocol):
    """Anything that answers a question about one RGB picture in a few words."""

    name: str

    def answer(self, picture: Image.Image, question: str) -> str:
        """The answer to `question` about `picture`."""
        ...


def clean_question(question: str) -> str:
    """The question on one line, with runs of white space made single spaces; ValueError
    with a one-line message when it is empty or longer than MAX_QUESTION_CHARS."""
    text = " ".join(str(question).split())
    if not text:
        raise ValueError("the question is empty; ask something about the photo")
    if len(text) > MAX_QUESTION_CHARS:
        raise ValueError(
            f"the question is {len(text)} characters long; ask in at most {MAX_QUESTION_CHARS}"
        )
    return text


def _answer_text(output: object) -> str:
    """The answer from one pipeline output: {'text': [str]}, {'text': str} or a bare str."""
    if isinstance(output, dict):
        output = output.get("text", "")
    if isinstance(output, (list, tuple)):
        output = output[0] if output else ""
    return " ".join(str(output or "").split())


class OfaQuestionAnswerer:
    """OFA visual question answering via
    `modelscope.pipelines.pipeline(Tasks.visual_question_answering, ...)`.

    `spec` is a ModelScope model id (fetched through its cache) or a local model folder; a
    model that cannot load raises indexer.errors.ModelUnavailable with one line. Weights
    load through transformers' safe loaders; code shipped with a model runs only with
    `trust_remote_code`. Answers are deterministic (beam search, no sampling). One answerer
    serves one thread at a time.
    """

    def __init__(self, spec: str, device: str = "auto", trust_remote_code: bool = False) -> None:
        self.name = spec
        self._pipeline = load_modelscope_pipeline(
            "visual-question-answering", spec, "question-answering model", "--vqa-model",
            device, trust_remote_code,
        )  # fmt: skip

    def answer(self, picture: Image.Image, question: str) -> str:
        """The model's answer to `question` about the RGB `picture`; ValueError for an empty
        or overly long question."""
        text = clean_question(question)
        # a dict, not a (picture, text) tuple: the preprocessor's column map names the keys
        return _answer_text(self._pipeline({"image": picture.convert("RGB"), "text": text}))
