"""Before / after figures on the held-out rows, measured through the product's own paths.

Captions: each held-out picture is captioned by the pipeline being trained (ModelScope's
own beam search, as `OfaCaptioner` with the "plain" profile runs it) and compared with its
caption: exact match after the normalisation the training targets get (punctuation
removed, white space collapsed; here also lower case), and token accuracy (teacher forcing:
the share of caption tokens, end-of-sentence included, that the model ranks first given the
right tokens before them). No CIDEr: the well-kept implementation (pycocoevalcap) needs
Java for its tokenizer.

Entailment: each held-out (picture, text) pair is judged as `OfaEntailmentReranker` judges
it (the full yes / no / maybe distribution); accuracy and a 3x3 confusion table.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from .data import ANSWERS, Row, load_picture

_BATCH = 16
_PUNCTUATION = str.maketrans({mark: None for mark in string.punctuation})


@dataclass
class Metrics:
    """Held-out figures of one model state. Captions fill exact_match and token_accuracy,
    entailment accuracy and confusion (confusion[truth][verdict] = pairs)."""

    rows: int = 0
    exact_match: float | None = None
    token_accuracy: float | None = None
    accuracy: float | None = None
    confusion: dict[str, dict[str, int]] | None = None
    examples: list[dict] = field(default_factory=list)  # a few wrong answers, to look at

    def as_dict(self) -> dict:
        values = {"rows": self.rows}
        for name in ("exact_match", "token_accuracy", "accuracy", "confusion"):
            if getattr(self, name) is not None:
                values[name] = getattr(self, name)
        values["examples"] = self.examples
        return values


def normalise(caption: str) -> str:
    return " ".join(caption.translate(_PUNCTUATION).lower().split())


def evaluate(trainee, rows: Iterable[Row], limit: int, on_done: Callable[[int], None]) -> Metrics:
    """The held-out figures of the trainee as it is now (at most `limit` rows)."""
    import torch

    trainee.net.eval()
    with torch.inference_mode():
        if trainee.task == "captions":
            return _captions(trainee, _loaded(rows, limit), on_done)
        return _entailment(trainee, _loaded(rows, limit), on_done)


def _loaded(rows: Iterable[Row], limit: int) -> Iterator[list[tuple[Row, object]]]:
    """Chunks of (row, picture) for up to `limit` rows whose pictures still load."""
    chunk, taken = [], 0
    for row in rows:
        if taken >= limit:
            break
        picture = load_picture(row.path)
        if isinstance(picture, str):
            continue
        chunk.append((row, picture))
        taken += 1
        if len(chunk) == _BATCH:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _captions(trainee, chunks, on_done) -> Metrics:
    from indexer.caption import OfaCaptioner

    captioner = OfaCaptioner.from_pipeline(trainee.pipeline, trainee.base, _BATCH)
    metrics, exact, tokens, right = Metrics(), 0, 0, 0
    for chunk in chunks:
        captions = captioner.caption([picture for _, picture in chunk])
        for (row, _), caption in zip(chunk, captions, strict=True):
            hit = normalise(caption) == normalise(row.text)
            exact += hit
            if not hit and len(metrics.examples) < 5:
                metrics.examples.append({"path": row.path, "caption": row.text, "got": caption})
        batch = trainee.collate([trainee.sample(picture, row) for row, picture in chunk])
        _, counted, correct = trainee.loss(batch, 0.0)
        tokens, right = tokens + counted, right + correct
        metrics.rows += len(chunk)
        on_done(metrics.rows)
    if metrics.rows:
        metrics.exact_match, metrics.token_accuracy = exact / metrics.rows, right / tokens
    return metrics


def _entailment(trainee, chunks, on_done) -> Metrics:
    from search.rerank import OfaEntailmentReranker

    judge = OfaEntailmentReranker.from_pipeline(trainee.pipeline, trainee.base, _BATCH)
    confusion = {truth: dict.fromkeys(ANSWERS, 0) for truth in ANSWERS}
    metrics, answers = Metrics(), judge.answers
    for chunk in chunks:
        rows = judge.probabilities([(picture, row.text) for row, picture in chunk])
        for (row, _), probabilities in zip(chunk, rows, strict=True):
            verdict = max(zip(probabilities, answers, strict=True))[1]
            confusion[row.label][verdict] += 1
            if verdict != row.label and len(metrics.examples) < 5:
                metrics.examples.append({"path": row.path, "text": row.text,
                                         "label": row.label, "got": verdict})  # fmt: skip
        metrics.rows += len(chunk)
        on_done(metrics.rows)
    if metrics.rows:
        metrics.accuracy = sum(confusion[a][a] for a in ANSWERS) / metrics.rows
        metrics.confusion = confusion
    return metrics
