"""The models a build uses, by name, loaded on first use: the wiring from settings to the
real OFA captioner and CLIP embedder. Tests pass fakes or tiny models instead."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .caption import Captioner
from .embed import Embedder


@dataclass
class ModelSet:
    """The build's models by name, loaded on first use (tests pass fakes or tiny models)."""

    caption_name: str
    clip_name: str
    load_captioner: Callable[[], Captioner]
    load_embedder: Callable[[], Embedder]
    _captioner: Captioner | None = field(default=None, repr=False)
    _embedder: Embedder | None = field(default=None, repr=False)
    # cheap: raises ModelUnavailable when the captioner could not be had (None: no check)
    find_captioner: Callable[[], object] | None = field(default=None, repr=False)

    def captioner(self) -> Captioner:
        """The captioner, loaded on the first call."""
        if self._captioner is None:
            self._captioner = self.load_captioner()
        return self._captioner

    def check_captioner(self) -> None:
        """Make sure the captioner can be loaded, without loading it when that can be
        checked more cheaply (a model folder or a cached hub id)."""
        if self._captioner is None and self.find_captioner is not None:
            self.find_captioner()

    def embedder(self) -> Embedder:
        """The CLIP embedder, loaded on the first call."""
        if self._embedder is None:
            self._embedder = self.load_embedder()
        return self._embedder


def models_from_settings(settings) -> ModelSet:
    """The real OFA captioner and CLIP embedder named by `settings`, loaded lazily."""
    from .caption import OfaCaptioner
    from .embed import ClipEmbedder
    from .hub import modelscope_model_dir

    return ModelSet(
        caption_name=settings.caption_model,
        clip_name=settings.clip_model,
        load_captioner=lambda: OfaCaptioner(
            settings.caption_model, settings.device, settings.batch_size,
            trust_remote_code=settings.trust_remote_code,
            profile="fast" if settings.profile == "fast" else "exact",
        ),
        # reduced precision where the hardware has it: vectors agree with fp32 to a cosine
        # of 0.9999 (python -m bench), above the 0.99 a default must keep
        load_embedder=lambda: ClipEmbedder(settings.clip_model, settings.device, "auto"),
        find_captioner=lambda: modelscope_model_dir(
            settings.caption_model, "caption model", "--caption-model"
        ),
    )  # fmt: skip


def default_rerank_model(device: str) -> str:
    """The OFA visual-entailment model for reranking and audits on `device`: the distilled
    one on a CPU, the large one on a GPU."""
    from .config import DEFAULT_RERANK_MODEL_CPU, DEFAULT_RERANK_MODEL_GPU
    from .hub import resolve_device

    on_gpu = resolve_device(device) == "cuda"
    return DEFAULT_RERANK_MODEL_GPU if on_gpu else DEFAULT_RERANK_MODEL_CPU
