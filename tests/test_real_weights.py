"""The same semantic checks as the trained shapes world, on the real default models, when
they are in this machine's caches (`indexer models fetch` puts them there). Skipped where
they are absent, as on a machine with no hub access; the trained-world tests prove the same
paths on learned weights everywhere."""

from __future__ import annotations

import random

import pytest

from indexer.config import DEFAULT_CAPTION_MODEL, DEFAULT_CLIP_MODEL, DEFAULT_RERANK_MODEL_CPU
from indexer.model_cache import CachedModel, locate, source_of
from testing.shapes import draw_shape

pytestmark = pytest.mark.real_weights


def cached(role: str, spec: str) -> str:
    """The spec, or a skip when the model is not on this machine."""
    if locate(CachedModel(role, spec, source_of(spec))) is None:
        pytest.skip(f"{spec} is not in the caches (`indexer models fetch` downloads it)")
    return spec


@pytest.fixture(scope="module")
def pictures():
    rng = random.Random(3)
    return {"red circle": draw_shape("red", "circle", rng, size=384),
            "blue square": draw_shape("blue", "square", rng, size=384),
            "pink triangle": draw_shape("pink", "triangle", rng, size=384)}  # fmt: skip


def test_captions_name_the_colour_and_exact_equals_the_unmodified_pipeline(pictures):
    from indexer.caption import OfaCaptioner

    spec = cached("caption", DEFAULT_CAPTION_MODEL)
    plain = OfaCaptioner(spec, "cpu", profile="plain")
    exact = OfaCaptioner(spec, "cpu", profile="exact")
    images = list(pictures.values())
    one_by_one = [plain.caption([image])[0] for image in images]
    assert exact.caption(images) == one_by_one  # EOS at the same place, in one batch
    assert "red" in one_by_one[0].lower(), one_by_one


def test_entailment_says_yes_to_the_truth_and_no_to_another_shape(pictures):
    from search.rerank import OfaEntailmentReranker

    reranker = OfaEntailmentReranker(cached("rerank", DEFAULT_RERANK_MODEL_CPU), "cpu")
    (truth,) = reranker.judge([pictures["red circle"]], "a red circle")
    (wrong,) = reranker.judge([pictures["red circle"]], "a blue square")
    assert truth.verdict == "yes" and wrong.verdict == "no", (truth, wrong)


def test_clip_finds_the_red_circle(pictures):
    from indexer.embed import ClipEmbedder

    embedder = ClipEmbedder(cached("clip", DEFAULT_CLIP_MODEL), "cpu")
    images = embedder.embed_images(list(pictures.values()))
    texts = embedder.embed_texts([f"a photo of a {name}" for name in pictures])
    assert list((images @ texts.T).argmax(axis=1)) == [0, 1, 2]
