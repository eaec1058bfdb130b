"""Reranking: does the picture show what was asked? OFA visual entailment, full distribution.

ModelScope's visual-entailment pipeline returns only the winning label and its probability,
and fails when given `batch_size`. `OfaEntailmentReranker` loads the same pipeline (so the
real model folder, preprocessor and answer set are used) but scores a batch of pairs itself,
the way `OfaForAllTasks._traverse_inference` does, keeping all three probabilities.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from PIL import Image

from indexer.errors import ModelUnavailable
from indexer.hub import load_modelscope_pipeline, resolve_device

DEFAULT_RERANK_MODEL_CPU = "damo/ofa_visual-entailment_snli-ve_distilled_v2_en"
DEFAULT_RERANK_MODEL_GPU = "iic/ofa_visual-entailment_snli-ve_large_en"
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
    """Anything that judges whether pictures show a text."""

    name: str

    def judge(self, images: Sequence[Image.Image], text: str) -> list[Judgement]:
        """One judgement per image, for the same text."""
        ...


def default_rerank_model(device: str) -> str:
    """The distilled model on a CPU, the large one on a GPU."""
    on_gpu = resolve_device(device) == "cuda"
    return DEFAULT_RERANK_MODEL_GPU if on_gpu else DEFAULT_RERANK_MODEL_CPU


class OfaEntailmentReranker:
    """OFA visual entailment (ModelScope `Tasks.visual_entailment`) scored in batches."""

    def __init__(
        self, spec: str, device: str = "auto", batch_size: int = 4, trust_remote_code=False
    ) -> None:
        self.name = spec
        self.batch_size = max(1, batch_size)
        self._pipeline = load_modelscope_pipeline(
            "visual-entailment", spec, "rerank model", "--rerank-model", device, trust_remote_code
        )
        self._answers = self._answer_order(spec)

    @classmethod
    def from_pipeline(cls, pipeline, name: str, batch_size: int = 4) -> OfaEntailmentReranker:
        """A reranker over a visual-entailment pipeline that is already loaded
        (`indexer finetune` measures the model it is training this way)."""
        reranker = cls.__new__(cls)
        reranker.name, reranker.batch_size, reranker._pipeline = name, max(1, batch_size), pipeline
        reranker._answers = reranker._answer_order(name)
        return reranker

    @property
    def answers(self) -> list[str]:
        """The model's answers in the order `probabilities` gives theirs."""
        return list(self._answers)

    def _answer_order(self, spec: str) -> list[str]:
        ofa = self._pipeline.model
        answers = [ofa.index2ans[i] for i in range(len(ofa.index2ans))]
        missing = set(VERDICTS) - set(answers)
        if missing:
            raise ModelUnavailable(
                f"rerank model {spec!r} does not answer {', '.join(sorted(missing))}; "
                "it is not a visual-entailment model"
            )
        return answers

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
        """Softmax over the model's answers (in `index2ans` order) for each pair, in one batch."""
        import torch

        with torch.inference_mode():
            scores = self._answer_log_scores(pairs)
            return torch.softmax(scores.float(), dim=-1).tolist()

    def _collate(self, pairs):
        import torch
        from modelscope.preprocessors.ofa.utils.collate import collate_tokens

        ofa = self._pipeline.model
        pad, device = ofa.tokenizer.pad_token_id, ofa.model.device
        prepare = self._pipeline.preprocessor.preprocess
        samples = [prepare({"image": image.convert("RGB"), "text": text}) for image, text in pairs]
        net_input = {
            "input_ids": collate_tokens([s["source"] for s in samples], pad).to(device),
            "patch_images": torch.stack([s["patch_image"] for s in samples]).to(device),
            "patch_masks": torch.cat([s["patch_mask"] for s in samples]).to(device),
        }
        return net_input, [torch.as_tensor(s["decoder_prompt"]).cpu() for s in samples]

    def _answer_log_scores(self, pairs):
        """Summed log-probability of each answer after each pair's prompt: [pairs, answers]."""
        import torch
        from modelscope.models.multi_modal.ofa.utils.utils import expand_mask
        from modelscope.preprocessors.ofa.utils.collate import collate_tokens

        ofa = self._pipeline.model
        model, pad, device = ofa.model, ofa.tokenizer.pad_token_id, ofa.model.device
        net_input, prompts = self._collate(pairs)
        encoded = model.encoder(**net_input)
        columns = []
        for answers, masks in zip(ofa.val_ans_l, ofa.val_masks_l, strict=True):
            size = len(answers)
            targets = collate_tokens(
                [torch.cat([p[1:], a, ofa.eos_item]) for p in prompts for a in answers], pad
            ).to(device)
            previous = collate_tokens([torch.cat([p, a]) for p in prompts for a in answers],
                                      pad).to(device)  # fmt: skip
            allowed = collate_tokens(
                [torch.cat([torch.zeros(len(p) - 1, m.size(1)).bool(), m])
                 for p in prompts for m in masks], pad,
            ).to(device)  # fmt: skip
            hidden = encoded["last_hidden_state"].repeat_interleave(size, 0)
            padding = encoded["padding_mask"].repeat_interleave(size, 0)
            out = model.decoder(
                previous,
                encoder_hidden_states=hidden,
                encoder_attention_mask=expand_mask(padding, hidden.dtype, previous.shape[-1]),
                src_pos_embed=encoded["position_embedding"].repeat_interleave(size, 0),
            )
            out[0].masked_fill_(~allowed, -math.inf)
            log_probs = model.get_normalized_probs(out, log_probs=True)
            scores = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            scores = scores.masked_fill(targets.eq(pad), 0).masked_fill((~allowed).all(2), 0)
            columns.append(scores.sum(1).view(-1, size))
        return torch.cat(columns, dim=-1)
