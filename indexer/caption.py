"""Captioning: an interface, and OFA through ModelScope's image-captioning pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from PIL import Image

from .errors import ModelUnavailable
from .hub import contained_side_effects, modelscope_model_dir, resolve_device


@runtime_checkable
class Captioner(Protocol):
    """Anything that turns RGB pictures into one English caption each."""

    name: str

    def caption(self, images: Sequence[Image.Image]) -> list[str]:
        """One caption per image, in order."""
        ...


def _caption_text(output: object) -> str:
    """The caption from one pipeline output: {'caption': [str]}, {'caption': str} or a bare str."""
    if isinstance(output, dict):
        output = output.get("caption", "")
    if isinstance(output, (list, tuple)):
        output = output[0] if output else ""
    return str(output).strip()


class OfaCaptioner:
    """OFA image captioning via `modelscope.pipelines.pipeline(Tasks.image_captioning, ...)`.

    `spec` is a ModelScope model id (fetched through its cache) or a local model folder.
    Weights load through transformers' safe loaders (safetensors, or torch.load with
    weights_only); code shipped with a model runs only with `trust_remote_code`.
    """

    def __init__(
        self, spec: str, device: str = "auto", batch_size: int = 8, trust_remote_code=False
    ) -> None:
        self.name = spec
        self.batch_size = batch_size
        folder = modelscope_model_dir(spec, "caption model", "--caption-model")
        device = resolve_device(device)
        try:
            with contained_side_effects():
                from modelscope.pipelines import pipeline
                from modelscope.utils.constant import Tasks

                self._pipeline = pipeline(Tasks.image_captioning, model=folder, device=device,
                                          trust_remote_code=trust_remote_code)  # fmt: skip
        except Exception as error:  # noqa: BLE001  (ModelScope raises many kinds)
            raise ModelUnavailable(
                f"caption model {spec!r} could not be loaded from {folder}: "
                f"{str(error).splitlines()[0] if str(error) else type(error).__name__}"
            ) from None

    def caption(self, images: Sequence[Image.Image]) -> list[str]:
        """Caption a batch of RGB images."""
        if not images:
            return []
        if len(images) == 1:
            return [_caption_text(self._pipeline(images[0]))]
        outputs = self._pipeline(list(images), batch_size=min(self.batch_size, len(images)))
        return [_caption_text(output) for output in outputs]
