"""Fake models with the real interfaces: deterministic, instant, and counting their calls."""

from __future__ import annotations

import numpy as np

from indexer.models import ModelSet


class FakeCaptioner:
    name = "fake-captioner"

    def __init__(self) -> None:
        self.images_seen = 0

    def caption(self, images):
        self.images_seen += len(images)
        return [f"a picture of {image.size[0]}x{image.size[1]} pixels" for image in images]


class FakeEmbedder:
    """Vectors from a 4x4 thumbnail: similar pictures get similar vectors."""

    def __init__(self, name: str = "fake-clip", dim: int = 48) -> None:
        self.name, self.dim = name, dim
        self.images_seen = 0

    def embed_images(self, images):
        self.images_seen += len(images)
        rows = [np.asarray(image.resize((4, 4))).astype(np.float32).ravel() + 1.0
                for image in images]  # fmt: skip
        vectors = np.stack(rows)[:, : self.dim]
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def embed_texts(self, texts):
        rng = np.random.default_rng(len(texts))
        vectors = rng.random((len(texts), self.dim), dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def fake_models(clip_name: str = "fake-clip", dim: int = 48) -> ModelSet:
    captioner, embedder = FakeCaptioner(), FakeEmbedder(clip_name, dim)
    return ModelSet("fake-captioner", clip_name, lambda: captioner, lambda: embedder,
                    captioner, embedder)  # fmt: skip


class ColourEmbedder:
    """Pictures by their mean colour, texts by the colour they name (tests/photos.COLOURS):
    a zero-shot tagger with this model knows red from blue, and nothing else."""

    def __init__(self, name: str = "colour-clip") -> None:
        self.name, self.dim = name, 3

    def embed_images(self, images):
        rows = [np.asarray(image.convert("RGB"), dtype=np.float32).reshape(-1, 3).mean(axis=0)
                for image in images]  # fmt: skip
        vectors = np.stack(rows) + 1.0
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def embed_texts(self, texts):
        from testing.photos import COLOURS

        rows = [next((np.asarray(rgb, np.float32) for name, rgb in COLOURS.items()
                      if name in text), np.ones(3, np.float32)) for text in texts]  # fmt: skip
        vectors = np.stack(rows) + 1.0
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def tiny_clip_models(clip_spec: str) -> ModelSet:
    """FakeCaptioner with the real (tiny) CLIP at `clip_spec`: an index the CLI commands can
    open with the CLIP model it records, built in-process without loading OFA."""
    from indexer.embed import ClipEmbedder

    captioner = FakeCaptioner()
    return ModelSet("fake-captioner", clip_spec, lambda: captioner,
                    lambda: ClipEmbedder(clip_spec, "cpu"))  # fmt: skip


def _verdicts():
    from search.rerank import Judgement

    return {"a red car": Judgement(0.05, 0.90, 0.05), "two dogs": Judgement(0.30, 0.50, 0.20),
            "maybe a tree": Judgement(0.25, 0.25, 0.50)}  # fmt: skip


class TextReranker:
    """Judges by the text alone (`VERDICT_BY_TEXT`, else a clear yes); counts the pictures."""

    name = "text-reranker"

    def __init__(self):
        self.pictures = 0

    def judge(self, images, text):
        from search.rerank import Judgement

        self.pictures += len(images)
        return [VERDICT_BY_TEXT.get(text, Judgement(0.80, 0.10, 0.10)) for _ in images]


VERDICT_BY_TEXT = _verdicts()
