"""Rerank cost and agreement: today's query-time path against the prepared one.

Before (as version 1 reranked): each candidate's original is decoded at query time and
scored by ModelScope's own arithmetic (the decoder over every (prompt, answer) row), in
float32. After (the default now): the square input the build prepared (indexer.model_inputs)
is read, and scored with one decoder pass over the prompts and channels-last convolutions
(indexer.ofa_speed.entailment). Both on the same pictures and queries, in the same run; the
agreement is on every (picture, query) pair.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .measure import latencies_ms, percentiles

TOP = 10


def _before_probabilities(scorer, pairs) -> np.ndarray:
    """Version 1's arithmetic: the plain encoder, the decoder over every answer row."""
    import torch

    encoder = scorer._task_model.model.encoder
    scorer._encode = lambda net_input: encoder(**net_input)  # shadows the method for a call
    try:
        with torch.inference_mode():
            scores = scorer._answer_log_scores(pairs, one_pass=False)
            return torch.softmax(scores.float(), dim=-1).numpy()
    finally:
        del scorer._encode


def _after_probabilities(scorer, pairs) -> np.ndarray:
    return np.asarray(scorer.probabilities(pairs))


def compare(spec: str, originals: list[Path], queries: list[str], device: str = "cpu",
            runs: int = 8) -> dict:  # fmt: skip
    """Top-10 rerank latency before and after, and how far their P(yes) and verdicts differ."""
    from indexer.decode import decode_image
    from indexer.model_inputs import square_input
    from search.rerank import VERDICTS, OfaEntailmentReranker

    reranker = OfaEntailmentReranker(spec, device)
    scorer = reranker._scorer
    if scorer is None:
        return {"error": reranker.notice}
    size = reranker.input_size or 480
    prepared = [square_input(decode_image(str(path)).image, size) for path in originals]
    yes = reranker.answers.index("yes")

    def before(i: int) -> np.ndarray:
        pictures = [decode_image(str(path)).image for path in originals[:TOP]]
        return _before_probabilities(scorer, [(p, queries[i % len(queries)]) for p in pictures])

    def after(i: int) -> np.ndarray:
        pictures = [decode_image(data).image for data in prepared[:TOP]]
        return _after_probabilities(scorer, [(p, queries[i % len(queries)]) for p in pictures])

    out = {"candidates": min(TOP, len(originals))}
    for name, action in (("before", before), ("after", after)):
        times = latencies_ms(action, runs, warmup=1)
        out[name] = {key + "_ms": round(value) for key, value in percentiles(times).items()}
    out.update(agreement(scorer, originals, prepared, queries, yes, VERDICTS, reranker.answers))
    return out


def agreement(scorer, originals, prepared, queries, yes, verdicts, answers) -> dict:
    """Max |P(yes) before - after| and verdicts alike, over every (picture, query)."""
    from indexer.decode import decode_image

    pictures = [decode_image(str(path)).image for path in originals]
    squares = [decode_image(data).image for data in prepared]
    order = [answers.index(v) for v in verdicts]
    diffs, same, total = [], 0, 0
    for query in queries:
        a = _before_probabilities(scorer, [(p, query) for p in pictures])
        b = _after_probabilities(scorer, [(p, query) for p in squares])
        diffs.append(np.abs(a[:, yes] - b[:, yes]).max())
        same += int((a[:, order].argmax(1) == b[:, order].argmax(1)).sum())
        total += len(pictures)
    return {"max_p_yes_diff": round(float(max(diffs)), 4), "same_verdicts": f"{same}/{total}"}


def world_agreement(cache: Path, device: str = "cpu") -> dict:
    """The same comparison on the shapes world's trained judge, on its library pictures
    with a true and a false statement each."""
    import tempfile

    from testing.world import trained_models, write_library

    models = trained_models(cache)
    with tempfile.TemporaryDirectory(prefix="bench-rerank-world-") as folder:
        truth = write_library(Path(folder))
        paths = sorted(truth)
        queries = sorted({f"a {colour} {shape}" for colour, shape in truth.values()})
        return compare(models.judge, paths, queries[:6], device, runs=4)
