"""Visual entailment scored in batches, keeping every answer's probability.

ModelScope's visual-entailment pipeline returns only the winning label and its probability,
one pair per call. ``EntailmentScorer`` scores a batch of pairs through the pipeline's own
model, preprocessor and answer set, the way ``OfaForAllTasks._traverse_inference``
(modelscope 1.40.2) does, behind the same gate as the caption speed-up.

``_traverse_inference`` runs the decoder over every (prompt, answer) row with a vocabulary
projection at every position, and scores an answer as the sum over its positions of the
log-probability of the next token under that position's constraint mask. For the real
answer sets ("yes", "no", "maybe": one token each, then a forced EOS) that sum has a single
term that is not exactly 0: the prompt positions are masked out and zeroed, and the EOS
position's mask allows one token, EOS itself, whose log-softmax is ``x - x - log(1)``,
exactly 0. That one term is read off one decoder pass over the prompts alone (the
decoder is causal, so the last prompt position does not see the answer): one row per pair
instead of one per pair and answer. Any other answer set (checked once, at construction)
keeps ``_traverse_inference``'s own computation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .gate import entailment_parts, unsupported_on_error

PRECISIONS = ("auto", "fp32")


class EntailmentScorer:
    """Batched answer probabilities for a visual-entailment pipeline.

    ``precision="auto"`` runs the image stem and encoder under autocast where the device has
    native reduced-precision kernels (a GPU: float16; a CPU with AVX-512 BF16 or AMX:
    bfloat16), which moves probabilities a little (1e-4 at most on the test models);
    elsewhere, and with ``"fp32"``, everything is float32. Raises ``OfaSpeedupUnsupported``
    (one line) when the installed ModelScope or the pipeline is not one whose
    ``_traverse_inference`` this replicates.
    """

    def __init__(self, pipeline: Any, precision: str = "auto") -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}")
        with unsupported_on_error("checking the visual-entailment pipeline"):
            self._task_model = entailment_parts(pipeline)
            self._prepare = pipeline.preprocessor.preprocess
            # None: the answers need the decoder over every (prompt, answer) row
            self._one_pass = single_token_answers(self._task_model)
            self._reduced = _reduced_dtype(self._task_model.model.device, precision)

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

    def _answer_log_scores(self, pairs, one_pass: bool = True):
        """Summed log-probability of each answer after each pair's prompt: [pairs, answers].
        ``one_pass=False`` takes ``_traverse_inference``'s path whatever the answers."""
        import torch

        task = self._task_model
        net_input, prompts = self._collate(pairs)
        encoded = self._encode(net_input)
        if one_pass and self._one_pass is not None:
            return self._last_position_scores(encoded, prompts, *self._one_pass)
        columns = [
            self._answer_group(encoded, prompts, answers, masks).view(-1, len(answers))
            for answers, masks in zip(task.val_ans_l, task.val_masks_l, strict=True)
        ]
        return torch.cat(columns, dim=-1)

    def _encode(self, net_input):
        """The encoder's output, in float32 whatever precision it ran in."""
        import torch

        encoder, device = self._task_model.model.encoder, self._task_model.model.device
        if device.type == "cpu" or self._reduced is not None:
            # oneDNN's convolutions are faster on NHWC; the stem's weights are left alone
            # (the pipeline's model may be one being fine-tuned), converted per call.
            images = net_input["patch_images"]
            net_input["patch_images"] = images.contiguous(memory_format=torch.channels_last)
        if self._reduced is None:
            encoded = encoder(**net_input)
        else:
            with torch.autocast(device.type, dtype=self._reduced):
                encoded = encoder(**net_input)
        keys = ("last_hidden_state", "padding_mask", "position_embedding")
        return {key: _float32(encoded[key]) for key in keys}

    def _last_position_scores(self, encoded, prompts, tokens, first_masks):
        """The one-token answers' log-probabilities after each prompt, from one decoder
        pass over the prompts: ``_traverse_inference``'s scores when ``_one_pass`` holds."""
        import torch
        from modelscope.models.multi_modal.ofa.utils.utils import expand_mask
        from modelscope.preprocessors.ofa.utils.collate import collate_tokens

        model, device = self._task_model.model, self._task_model.model.device
        hidden = encoded["last_hidden_state"]
        previous = collate_tokens(prompts, self._task_model.tokenizer.pad_token_id).to(device)
        padding = expand_mask(encoded["padding_mask"], hidden.dtype, previous.shape[-1])
        # OFADecoder projects every position onto the vocabulary; only the last is used.
        out = model.decoder(
            previous,
            encoder_hidden_states=hidden,
            encoder_attention_mask=padding,
            src_pos_embed=encoded["position_embedding"],
        )
        # right-padded, and causal: the pads after a short prompt do not change its logits
        last = torch.tensor([len(p) - 1 for p in prompts], device=device)
        logits = out[0][torch.arange(len(prompts), device=device), last]
        masked = logits.unsqueeze(1).masked_fill(~first_masks.to(device), -math.inf)
        log_probs = model.get_normalized_probs((masked,), log_probs=True)  # [pairs, answers, V]
        index = tokens.to(device).view(1, -1, 1).expand(len(prompts), -1, 1)
        return log_probs.gather(-1, index).squeeze(-1)

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


def single_token_answers(task_model: Any):
    """(answer tokens [answers], their first-position masks [answers, vocabulary]) in
    column order when every answer is one token followed by a forced EOS, else None.

    Forced: the mask after the answer allows EOS and nothing else, so that position adds
    exactly 0. An answer token equal to the pad token is refused: ``_traverse_inference``
    zeroes the score of any target that equals the pad token.
    """
    import torch

    eos, pad = task_model.eos_item.tolist(), task_model.tokenizer.pad_token_id
    tokens, first_masks = [], []
    for answers, masks in zip(task_model.val_ans_l, task_model.val_masks_l, strict=True):
        if len(answers) != len(masks):
            return None
        for answer, mask in zip(answers, masks, strict=True):
            answer, mask = torch.as_tensor(answer), torch.as_tensor(mask)
            if answer.shape != (1,) or int(answer) == pad or len(eos) != 1:
                return None
            if mask.dtype != torch.bool or mask.dim() != 2 or mask.size(0) != 2:
                return None
            if mask[1].nonzero().flatten().tolist() != eos:
                return None
            tokens.append(int(answer))
            first_masks.append(mask[0])
    if not tokens:
        return None
    return torch.tensor(tokens), torch.stack(first_masks)


def _reduced_dtype(device: Any, precision: str):
    """The autocast dtype for the stem and encoder, or None for float32."""
    import torch

    from indexer.embed import fast_dtype_available

    if precision == "fp32":
        return None
    fast = fast_dtype_available("cuda" if device.type == "cuda" else "cpu")
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(fast or "")


def _float32(tensor):
    """A floating tensor as float32 (the decoder runs in float32); others unchanged."""
    return tensor.float() if tensor.is_floating_point() else tensor
