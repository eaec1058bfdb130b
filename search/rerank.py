"""Reranking: does the picture show what was asked? OFA visual entailment, full distribution.

ModelScope's visual-entailment pipeline returns only the winning label and its probability,
and fails when given `batch_size`. `OfaEntailmentReranker` loads the same pipeline (so the
real model folder, preprocessor and answer set are used) and scores a batch of pairs itself
with `indexer.ofa_speed.entailment`, keeping all three probabilities. Where that is not
supported (another ModelScope version or structure), it asks the pipeline one pair at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from PIL import Image

from indexer.errors import ModelUnavailable
from indexer.hub import load_modelscope_pipeline

VERDICTS = ("yes", "no", "maybe")


@dataclass(frozen=True)
class Judgement:
    """The entailment distribution for one (picture, text) pair."""

    p_yes: float
    p_no: float
    p_maybe: float

    @property
    def verdict(self) -> str:
        """The most probable of yes / no / maybe."""
        return max(zip((self.p_yes, self.p_no, self.p_maybe), VERDICTS, strict=True))[1]


@runtime_checkable
class Reranker(Protocol):
    """Anything that judges whether pictures show a text. One with an `input_size` is
    given the square the build prepared at that size (indexer.model_inputs) when there is
    one, and the decoded original otherwise. One with `languages` (codes, as in
    search.language) reads those; one without, English only."""

    name: str

    def judge(self, images: Sequence[Image.Image], text: str) -> list[Judgement]:
        """One judgement per image, for the same text."""
        ...


class OfaEntailmentReranker:
    """OFA visual entailment (ModelScope `Tasks.visual_entailment`) scored in batches.

    If the batched scoring is not supported (see `indexer.ofa_speed.gate`) or fails at run
    time, the reranker uses the pipeline's own answers from then on, one pair per call, and
    `notice` says so. Those give only the winning answer's probability: the fallback
    `Judgement` gives the winner that probability and splits the rest equally between the
    other answers, so verdicts and P(winner) stay exact while the losers' split is a guess.
    """

    languages = ("en",)  # the SNLI-VE entailment models read English

    def __init__(
        self, spec: str, device: str = "auto", batch_size: int = 4, trust_remote_code=False
    ) -> None:
        self.name = spec
        self.batch_size = max(1, batch_size)
        self.notice: str | None = None
        self._pipeline = load_modelscope_pipeline(
            "visual-entailment", spec, "rerank model", "--rerank-model", device, trust_remote_code
        )
        self._prepare(spec)

    @classmethod
    def from_pipeline(cls, pipeline, name: str, batch_size: int = 4) -> OfaEntailmentReranker:
        """A reranker over a visual-entailment pipeline that is already loaded
        (`indexer finetune` measures the model it is training this way)."""
        reranker = cls.__new__(cls)
        reranker.name, reranker.batch_size, reranker.notice = name, max(1, batch_size), None
        reranker._pipeline = pipeline
        reranker._prepare(name)
        return reranker

    @property
    def answers(self) -> list[str]:
        """The model's answers in the order `probabilities` gives theirs."""
        return list(self._answers)

    def _prepare(self, spec: str) -> None:
        """The model's answer order, and its batched scorer where the gate allows one."""
        from indexer.ofa_speed import OfaSpeedupUnsupported
        from indexer.ofa_speed.entailment import EntailmentScorer

        preprocess = getattr(getattr(self._pipeline, "preprocessor", None), "preprocess", None)
        # the side of the square it squeezes pictures to (indexer.model_inputs)
        self.input_size: int | None = getattr(preprocess, "patch_image_size", None)
        index2ans = getattr(self._pipeline.model, "index2ans", None) or {}
        self._answers = [index2ans[i] for i in range(len(index2ans))]
        missing = set(VERDICTS) - set(self._answers)
        if missing:
            raise ModelUnavailable(
                f"rerank model {spec!r} does not answer {', '.join(sorted(missing))}; "
                "it is not a visual-entailment model"
            )
        self._scorer: EntailmentScorer | None = None
        try:
            self._scorer = EntailmentScorer(self._pipeline)
        except OfaSpeedupUnsupported as error:
            self._fall_back(str(error))

    def _fall_back(self, reason: str) -> None:
        self._scorer = None
        self.notice = f"reranking uses ModelScope's own, slower one-by-one scoring: {reason}"

    def judge(self, images: Sequence[Image.Image], text: str) -> list[Judgement]:
        """Judge each image against `text`, `batch_size` pairs per forward pass."""
        judgements: list[Judgement] = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            for row in self.probabilities([(image, text) for image in chunk]):
                p = dict(zip(self._answers, row, strict=True))
                judgements.append(Judgement(p["yes"], p["no"], p["maybe"]))
        return judgements

    def probabilities(self, pairs: Sequence[tuple[Image.Image, str]]) -> list[list[float]]:
        """Softmax over the model's answers (in `index2ans` order) for each pair, in one batch
        (or, after a fallback, the pipeline's answers one by one: see the class)."""
        if self._scorer is not None:
            try:
                return self._scorer.probabilities(pairs)
            except Exception as error:  # noqa: BLE001  (an unknown ModelScope: any error)
                from indexer.ofa_speed.gate import one_line

                self._fall_back(f"batched scoring failed ({one_line(error)})")
        return [self._pipeline_answer(image, text) for image, text in pairs]

    def _pipeline_answer(self, image: Image.Image, text: str) -> list[float]:
        """The pipeline's own answer as a distribution: the winner's probability, the rest
        split equally between the other answers."""
        answer = self._pipeline({"image": image.convert("RGB"), "text": text})
        label, score = _single(answer["labels"]), float(_single(answer["scores"]))
        rest = (1.0 - score) / (len(self._answers) - 1)
        return [score if name == label else rest for name in self._answers]


def _single(value: object) -> object:
    """The value of a one-pair pipeline output field, unwrapped from a list if it is one."""
    return value[0] if isinstance(value, (list, tuple)) else value
