"""Visual entailment scored in batches, keeping every answer's probability.

ModelScope's visual-entailment pipeline returns only the winning label and its probability,
one pair per call. ``EntailmentScorer`` scores a batch of pairs through the pipeline's own
model, preprocessor and answer set, the way ``OfaForAllTasks._traverse_inference``
(modelscope 1.40.2) does, behind the same gate as the caption speed-up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .gate import entailment_parts, unsupported_on_error


class EntailmentScorer:
    """Batched answer probabilities for a visual-entailment pipeline.

    Raises ``OfaSpeedupUnsupported`` (one line) when the installed ModelScope or the
    pipeline is not one whose ``_traverse_inference`` this replicates.
    """

    def __init__(self, pipeline: Any) -> None:
        with unsupported_on_error("checking the visual-entailment pipeline"):
            self._task_model = entailment_parts(pipeline)
            self._prepare = pipeline.preprocessor.preprocess

    def probabilities(self, pairs: Sequence[tuple[Any, str]]) -> list[list[float]]:
        """Softmax over the model's answers (in ``index2ans`` order) for each (picture,
        text) pair, in one batch."""
        import torch

        with torch.inference_mode():
            return torch.softmax(self._answer_log_scores(pairs).float(), dim=-1).tolist()

    def _collate(self, pairs):
        import torch
        from modelscope.preprocessors.ofa.utils.collate import collate_tokens

        task = self._task_model
        pad, device = task.tokenizer.pad_token_id, task.model.device
        samples = [self._prepare({"image": image.convert("RGB"), "text": text})
                   for image, text in pairs]  # fmt: skip
        net_input = {
            "input_ids": collate_tokens([s["source"] for s in samples], pad).to(device),
            "patch_images": torch.stack([s["patch_image"] for s in samples]).to(device),
            "patch_masks": torch.cat([s["patch_mask"] for s in samples]).to(device),
        }
        return net_input, [torch.as_tensor(s["decoder_prompt"]).cpu() for s in samples]

    def _answer_log_scores(self, pairs):
        """Summed log-probability of each answer after each pair's prompt: [pairs, answers]."""
        import torch

        task = self._task_model
        net_input, prompts = self._collate(pairs)
        encoded = task.model.encoder(**net_input)
        columns = [
            self._answer_group(encoded, prompts, answers, masks).view(-1, len(answers))
            for answers, masks in zip(task.val_ans_l, task.val_masks_l, strict=True)
        ]
        return torch.cat(columns, dim=-1)

    def _answer_group(self, encoded, prompts, answers, masks):
        """One group of ``val_ans_l``: the score of each (prompt, answer), prompt-major."""
        import torch
        from modelscope.models.multi_modal.ofa.utils.utils import expand_mask
        from modelscope.preprocessors.ofa.utils.collate import collate_tokens

        task = self._task_model
        model, pad, device = task.model, task.tokenizer.pad_token_id, task.model.device
        size = len(answers)
        targets = collate_tokens(
            [torch.cat([p[1:], a, task.eos_item]) for p in prompts for a in answers], pad
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
        return scores.sum(1)
