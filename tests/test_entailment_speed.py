"""The entailment scorer's one decoder pass over the prompts gives ``_traverse_inference``'s
probabilities (its own computation, kept as ``one_pass=False``), and is used only when the
answer set allows it."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest
import torch

from indexer.ofa_speed import entailment
from indexer.ofa_speed.entailment import EntailmentScorer, single_token_answers
from search.rerank import OfaEntailmentReranker
from testing.photos import scene

TEXTS = ["a red car", "two dogs playing on a sunny beach", "food"]  # prompts of three lengths


@pytest.fixture(scope="module")
def reranker(tiny_ofa_entailment):
    return OfaEntailmentReranker(tiny_ofa_entailment, device="cpu", batch_size=3)


@pytest.fixture(scope="module")
def pairs():
    return [(scene(seed, (120, 90)), text) for seed in range(4) for text in TEXTS]


def both_paths(scorer, pairs):
    """(one-pass, traverse) probabilities, [pairs, answers] each."""
    with torch.inference_mode():
        fast = scorer._answer_log_scores(pairs).softmax(-1)
        traverse = scorer._answer_log_scores(pairs, one_pass=False).softmax(-1)
    return fast, traverse


def decoder_rows(scorer, pairs, one_pass):
    """The batch size of each decoder call while scoring ``pairs``."""
    rows = []
    decoder = scorer._task_model.model.decoder
    hook = decoder.register_forward_pre_hook(lambda _, args: rows.append(args[0].size(0)))
    try:
        with torch.inference_mode():
            scorer._answer_log_scores(pairs, one_pass=one_pass)
    finally:
        hook.remove()
    return rows


def test_one_pass_gives_the_traverse_probabilities(reranker, pairs):
    scorer = reranker._scorer
    assert scorer._one_pass is not None  # yes / no / maybe: one token each, then EOS
    fast, traverse = both_paths(scorer, pairs)
    assert (fast - traverse).abs().max().item() <= 1e-5
    assert fast.argmax(-1).tolist() == traverse.argmax(-1).tolist()


def test_one_pass_runs_the_decoder_once_over_the_prompts(reranker, pairs):
    scorer, answers = reranker._scorer, len(reranker.answers)
    assert decoder_rows(scorer, pairs, one_pass=True) == [len(pairs)]
    assert sum(decoder_rows(scorer, pairs, one_pass=False)) == len(pairs) * answers


def fake_task(task, answers=None, masks=None):
    """The fields ``single_token_answers`` reads: the real task model's, in one group
    (copies), with ``answers`` / ``masks`` in their place where given."""
    if answers is None:
        answers = [a.clone() for group in task.val_ans_l for a in group]
    if masks is None:
        masks = [m.clone() for group in task.val_masks_l for m in group]
    return SimpleNamespace(eos_item=task.eos_item, tokenizer=task.tokenizer,
                           val_ans_l=[answers], val_masks_l=[masks])  # fmt: skip


def test_the_one_pass_check_refuses_other_answer_sets(reranker):
    task = reranker._pipeline.model
    tokens, first_masks = single_token_answers(fake_task(task))
    assert tokens.tolist() == [int(a) for group in task.val_ans_l for a in group]
    assert first_masks.shape == (len(tokens), task.val_masks_l[0][0].size(1))

    masks = fake_task(task).val_masks_l[0]
    eos, pad = int(task.eos_item), task.tokenizer.pad_token_id
    two_tokens = [torch.cat([a, a]) for a in fake_task(task).val_ans_l[0]]
    three_rows = [torch.cat([m[:1], m]) for m in masks]
    open_end = [m.clone() for m in masks]
    open_end[1][1, eos + 1] = True  # EOS not forced: its position scores something
    not_eos = [m.clone() for m in masks]
    not_eos[0][1] = False
    not_eos[0][1, eos + 1] = True  # one token allowed, but not the EOS that is scored
    padded = [torch.tensor([pad])] + fake_task(task).val_ans_l[0][1:]
    refused = [
        fake_task(task, answers=two_tokens, masks=three_rows),
        fake_task(task, masks=open_end),
        fake_task(task, masks=not_eos),
        fake_task(task, answers=padded),
        fake_task(task, answers=[], masks=[]),
    ]
    for case in refused:
        assert single_token_answers(case) is None


def test_answers_that_are_not_one_pass_keep_the_traverse_path(tiny_ofa_entailment, pairs):
    """A mask that lets the position after the answer choose between EOS and another token
    (so it scores something): the scorer keeps ``_traverse_inference``'s path and agrees
    with the pipeline's own answers, which the one-pass shortcut would not."""
    fallback = OfaEntailmentReranker(tiny_ofa_entailment, device="cpu", batch_size=3)
    task = fallback._pipeline.model  # this reranker's own pipeline: free to change
    eos = int(task.eos_item)
    for group in task.val_masks_l:
        for mask in group:
            mask[1, eos + 1] = True
    scorer = EntailmentScorer(fallback._pipeline)
    assert scorer._one_pass is None
    fallback._scorer = scorer
    some = pairs[:4]
    assert sum(decoder_rows(scorer, some, one_pass=True)) == len(some) * len(fallback.answers)
    for (picture, text), row in zip(some, fallback.probabilities(some), strict=True):
        own = fallback._pipeline({"image": picture, "text": text})
        assert fallback.answers[row.index(max(row))] == own["labels"]
        assert max(row) == pytest.approx(own["scores"], abs=1e-5)
    # the check matters: the one-pass reading ignores what the EOS position scores
    tokens = torch.tensor([int(a) for group in task.val_ans_l for a in group])
    scorer._one_pass = tokens, torch.stack([m[0] for group in task.val_masks_l for m in group])
    shortcut, traverse = both_paths(scorer, some)
    assert (shortcut - traverse).abs().max().item() > 1e-4


def test_a_monkeypatched_check_falls_back_to_traverse(tiny_ofa_entailment, pairs, monkeypatch):
    monkeypatch.setattr(entailment, "single_token_answers", lambda task: None)
    fallback = OfaEntailmentReranker(tiny_ofa_entailment, device="cpu", batch_size=3)
    assert fallback._scorer._one_pass is None and fallback.notice is None
    judged = fallback.judge([picture for picture, _ in pairs[:3]], "a red circle")
    for (picture, _), judgement in zip(pairs[:3], judged, strict=True):
        own = fallback._pipeline({"image": picture, "text": "a red circle"})
        assert judgement.verdict == own["labels"]


def test_the_stem_gets_channels_last_input_and_its_weights_are_untouched(reranker, pairs):
    stem = reranker._pipeline.model.model.encoder.embed_images
    seen = []
    hook = stem.register_forward_pre_hook(
        lambda _, args: seen.append(args[0].is_contiguous(memory_format=torch.channels_last))
    )
    try:
        reranker.probabilities(pairs[:2])
    finally:
        hook.remove()
    assert seen == [True]
    convolutions = [p for p in stem.parameters() if p.dim() == 4]
    assert convolutions and all(p.is_contiguous() for p in convolutions)


def test_reduced_precision_only_where_the_device_has_native_kernels(reranker, pairs, monkeypatch):
    import indexer.embed

    pipeline = reranker._pipeline
    monkeypatch.setattr(indexer.embed, "fast_dtype_available", lambda device: None)
    assert EntailmentScorer(pipeline)._reduced is None  # AVX2-only CPU: float32
    monkeypatch.setattr(indexer.embed, "fast_dtype_available", lambda device: "bf16")
    assert EntailmentScorer(pipeline, precision="fp32")._reduced is None
    reduced = EntailmentScorer(pipeline)
    assert reduced._reduced is torch.bfloat16
    # runs here too (slowly, without native kernels): the decoder gets float32 states
    with torch.inference_mode():
        close = reduced._answer_log_scores(pairs[:3]).softmax(-1)
    exact = torch.tensor(reranker.probabilities(pairs[:3]))
    assert close.dtype == torch.float32
    assert (close - exact).abs().max().item() < 1e-2
    with pytest.raises(ValueError):
        EntailmentScorer(pipeline, precision="bf16")


@pytest.mark.slow
def test_one_pass_on_the_trained_judge(world_models):
    from testing.shapes import COLOURS, SHAPES, draw_shape, text_of

    judge = OfaEntailmentReranker(world_models.judge, device="cpu")
    rng = random.Random(7)
    labels = [(rng.choice(list(COLOURS)), rng.choice(SHAPES)) for _ in range(6)]
    pictures = [draw_shape(colour, shape, rng) for colour, shape in labels]
    texts = [text_of(*label) for label in labels[1:] + labels[:1]]
    pairs = [(p, t) for p in pictures for t in dict.fromkeys([*texts[:2], text_of(*labels[0])])]
    fast, traverse = both_paths(judge._scorer, pairs)
    difference = (fast - traverse).abs().max().item()
    print(f"\ntrained judge: max |one-pass - traverse| = {difference:.2e} over {len(pairs)} pairs")
    assert difference <= 1e-5
    assert fast.argmax(-1).tolist() == traverse.argmax(-1).tolist()
    assert max(fast.max(-1).values.tolist()) > 0.9  # learned, peaked answers
