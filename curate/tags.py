"""Zero-shot tags: labels from CLIP, stored with each photo, usable as search filters.

Scoring: each label becomes a prompt ("a photo of {label}") embedded with the index's own
CLIP model, and one neutral prompt ("a photo") joins them. A photo's stored vector is
compared with every prompt by cosine similarity, and the cosines go through a softmax at
CLIP's logit scale (100, the value trained CLIP models end at). The score of a label is its
softmax probability: how much better the label describes the photo than the other labels
and than saying nothing in particular. That is what CLIP was trained to rank, and unlike
raw cosines (around 0.2-0.35 for trained models, anything for others) it means the same
across models and prompts. The neutral prompt is what lets a photo that fits none of the
labels stay untagged instead of taking the least-bad one, and what makes a single label a
yes/no question rather than a certain yes. A photo gets every label whose score reaches the
threshold, so with the default 0.3 it can carry up to three (people on a beach: both).

Tags are rows of the `tags` table (image_id, label, score, model). Tagging with a set of
labels replaces all earlier tags of those labels and leaves other labels alone. A photo
whose content changes loses its tags (the store sees to it); new photos have none until
`indexer tag` runs again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from indexer.embed import Embedder
from indexer.errors import IndexerError, IndexMismatch
from indexer.progress import Progress
from indexer.store import IndexStore

DEFAULT_TEMPLATE = "a photo of {}"
NEUTRAL_PROMPT = "a photo"
DEFAULT_THRESHOLD = 0.3
LOGIT_SCALE = 100.0
_BATCH = 4096


@dataclass
class TagReport:
    """What a tagging run did: photos examined and tagged, and photos per label."""

    labels: list[str]
    threshold: float
    model: str
    photos: int
    tagged: int
    counts: dict[str, int]

    def as_dict(self) -> dict:
        """JSON-ready fields."""
        return asdict(self)


def parse_labels(text: str | Iterable[str]) -> list[str]:
    """Labels from "beach, mountain,city" (or a list): trimmed, blanks and repeats dropped.
    Chinese and Japanese commas ("猫，狗、海滩") separate labels too.

    Raises ValueError when no label is left.
    """
    parts = re.split(r"[,，、]", text) if isinstance(text, str) else list(text)
    labels = list(dict.fromkeys(" ".join(part.split()) for part in parts))
    labels = [label for label in labels if label]
    if not labels:
        raise ValueError('give at least one label, e.g. --labels "beach,city,food"')
    return labels


def label_scores(
    vectors: np.ndarray, label_vectors: np.ndarray, scale: float = LOGIT_SCALE
) -> np.ndarray:
    """Softmax over labels of `scale` x cosine: (photos, labels), each row summing to 1."""
    logits = scale * (np.asarray(vectors, np.float32) @ np.asarray(label_vectors, np.float32).T)
    logits -= logits.max(axis=1, keepdims=True)  # numerically safe softmax
    weights = np.exp(logits)
    return weights / weights.sum(axis=1, keepdims=True)


def tag_photos(
    store: IndexStore,
    embedder: Embedder,
    labels: Sequence[str],
    threshold: float = DEFAULT_THRESHOLD,
    template: str = DEFAULT_TEMPLATE,
    on_progress: Callable[[Progress], None] | None = None,
) -> TagReport:
    """Score every indexed photo against `labels` and store the labels that reach
    `threshold` (see the module docstring), replacing earlier tags of those labels.

    `embedder` must be the index's CLIP model. Raises ValueError for bad labels or threshold,
    IndexMismatch when the embedder is another model, IndexerError on an empty index.
    """
    labels = parse_labels(labels)
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be above 0 and at most 1, not {threshold}")
    _check_embedder(store, embedder)
    prompts = embedder.embed_texts([template.format(label) for label in labels] + [NEUTRAL_PROMPT])
    report = on_progress or (lambda progress: None)
    total, done, rows = store.count_images(), 0, []
    tagged: set[int] = set()
    report(Progress(0, total))
    for ids, vectors in store.iter_vectors(batch=_BATCH):
        scores = label_scores(vectors, prompts)[:, : len(labels)]  # the neutral column goes
        for photo, column in zip(*np.nonzero(scores >= threshold), strict=True):
            image_id = int(ids[photo])
            rows.append((image_id, labels[column], float(scores[photo, column]), embedder.name))
            tagged.add(image_id)
        done += len(ids)
        report(Progress(done, total))
    store.replace_tags(labels, rows)
    counts = {label: sum(row[1] == label for row in rows) for label in labels}
    return TagReport(labels, threshold, embedder.name, done, len(tagged), counts)


def _check_embedder(store: IndexStore, embedder: Embedder) -> None:
    models = store.models()
    if not models["clip_model"] or store.count_images() == 0:
        raise IndexerError(f"index {store.index_dir} is empty; run `indexer build PHOTOS` first")
    if embedder.name != models["clip_model"] or embedder.dim != models["vector_dim"]:
        raise IndexMismatch(
            f"tags need the index's CLIP model {models['clip_model']!r}, not {embedder.name!r}"
        )


def tagged_photos(store: IndexStore, labels: Sequence[str]) -> list[dict]:
    """Photos carrying every one of `labels`: dicts with id, path, caption, width, height,
    date and `score` (the lowest of their scores for those labels), best first.

    Raises IndexerError naming the known labels when one of `labels` was never stored.
    """
    labels = parse_labels(labels)
    known = store.tag_counts()
    unknown = [label for label in labels if label not in known]
    if unknown:
        have = ", ".join(known) or "none yet"
        raise IndexerError(f"no photo is tagged {unknown[0]!r} (tags: {have}); "
                           "run `indexer tag --labels ...` first")  # fmt: skip
    return store.tagged_images(labels)
