"""Captioning: an interface, and OFA through ModelScope's image-captioning pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from PIL import Image

from .hub import load_modelscope_pipeline


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

    `profile` picks the generation code (see indexer/ofa_speed/): "exact" (default: an
    incremental decoder giving the same captions as the unmodified pipeline, several times
    faster), "fast" (the same decoder on bfloat16 weights with a channels-last image stem;
    captions may change) or "plain" (ModelScope's own loop, untouched). If the installed
    ModelScope is not one the speed-up knows, or the speed-up fails its checks, the plain
    loop is used and `notice` says so.
    """

    def __init__(
        self,
        spec: str,
        device: str = "auto",
        batch_size: int = 8,
        trust_remote_code: bool = False,
        profile: str = "exact",
    ) -> None:
        self.name = spec
        self.batch_size = batch_size
        self.notice: str | None = None
        self._pipeline = load_modelscope_pipeline(
            "image-captioning", spec, "caption model", "--caption-model", device,
            trust_remote_code,
        )  # fmt: skip
        self.profile = self._speed_up(profile)

    @classmethod
    def from_pipeline(cls, pipeline, name: str, batch_size: int = 8) -> OfaCaptioner:
        """A captioner over an image-captioning pipeline that is already loaded, with
        ModelScope's own generation ("plain"): `indexer finetune` measures the model it is
        training this way, while its weights change."""
        captioner = cls.__new__(cls)
        captioner.name, captioner.batch_size, captioner.notice = name, batch_size, None
        captioner._pipeline, captioner.profile = pipeline, "plain"
        return captioner

    def _speed_up(self, profile: str) -> str:
        from .ofa_speed import PROFILES, OfaSpeedupUnsupported, speed_up_captioning

        if profile == "plain":
            return profile
        if profile not in PROFILES:
            raise ValueError(f"caption profile must be plain or one of {', '.join(PROFILES)}")
        try:
            speed_up_captioning(self._pipeline, profile=profile)
        except OfaSpeedupUnsupported as error:
            self.notice = f"captions use ModelScope's own, slower generation: {error}"
            return "plain"
        return profile

    def guard_counts(self) -> tuple[int, int] | None:
        """(images captioned, images the exact profile's near-tie guard sent back through
        the unmodified arithmetic) so far; None for the other profiles."""
        speedup = vars(self._pipeline.model.generator).get("generate")
        if self.profile != "exact" or speedup is None:
            return None
        return speedup.guarded_images, speedup.redone_images

    def caption(self, images: Sequence[Image.Image]) -> list[str]:
        """Caption a batch of RGB images."""
        if not images:
            return []
        if len(images) == 1:
            return [_caption_text(self._pipeline(images[0]))]
        outputs = self._pipeline(list(images), batch_size=min(self.batch_size, len(images)))
        return [_caption_text(output) for output in outputs]
