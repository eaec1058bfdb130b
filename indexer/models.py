"""The models a build uses, by name, loaded on first use: the wiring from settings to the
real OFA captioner and CLIP embedder. Tests pass fakes or tiny models instead."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from .caption import Captioner
from .embed import Embedder
from .model_inputs import INPUT_SIZE, reranker_input_size


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
    input_size: int = INPUT_SIZE  # the reranker's picture side (indexer.model_inputs)
    _preload: threading.Thread | None = field(default=None, repr=False)
    _preload_error: BaseException | None = field(default=None, repr=False)

    def captioner(self) -> Captioner:
        """The captioner, loaded on the first call (or by `preload_captioner`)."""
        if self._preload is not None:
            self._preload.join()
            self._preload, failure, self._preload_error = None, self._preload_error, None
            if failure is not None:
                raise failure
        if self._captioner is None:
            self._captioner = self.load_captioner()
        return self._captioner

    def preload_captioner(self) -> None:
        """Start loading the captioner in a background thread, so that it is ready when a
        later pass needs it; `captioner()` waits for it and raises what the load raised."""
        if self._captioner is not None or self._preload is not None:
            return

        def load() -> None:
            try:
                self._captioner = self.load_captioner()
            except BaseException as error:  # noqa: BLE001  (raised by captioner())
                self._preload_error = error

        self._preload = threading.Thread(target=load, name="captioner-preload", daemon=True)
        self._preload.start()

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
        input_size=reranker_input_size(
            settings.rerank_model or default_rerank_model(settings.device)
        ),
    )  # fmt: skip


def default_rerank_model(device: str) -> str:
    """The OFA visual-entailment model for reranking and audits on `device`: the distilled
    one on a CPU, the large one on a GPU."""
    from .config import DEFAULT_RERANK_MODEL_CPU, DEFAULT_RERANK_MODEL_GPU
    from .hub import resolve_device

    on_gpu = resolve_device(device) == "cuda"
    return DEFAULT_RERANK_MODEL_GPU if on_gpu else DEFAULT_RERANK_MODEL_CPU
