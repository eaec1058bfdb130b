"""Embedding: an interface, and CLIP through open_clip.

Vectors are float32 and L2-normalised, so inner product is cosine similarity.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from .errors import ModelUnavailable
from .hub import CLIP_LOCAL_PREFIX, clip_hub_source, looks_like_path, offline, resolve_device


@runtime_checkable
class Embedder(Protocol):
    """Anything that maps pictures and texts into one vector space."""

    name: str
    dim: int

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(n, dim) float32, L2-normalised."""
        ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32, L2-normalised."""
        ...


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def open_clip_name(spec: str) -> tuple[str, str | None]:
    """(model name, pretrained tag) for open_clip from a spec.

    Specs: `hf-hub:org/repo`, `local-dir:/path`, a folder path, or `ARCH` / `ARCH@PRETRAINED`
    (e.g. `ViT-B-32@laion2b_s34b_b79k`).
    """
    if spec.startswith(("hf-hub:", CLIP_LOCAL_PREFIX)):
        return spec, None
    if looks_like_path(spec):
        return CLIP_LOCAL_PREFIX + os.path.abspath(os.path.expanduser(spec)), None
    name, _, pretrained = spec.partition("@")
    return name, pretrained or None


def _check_local_dir(model_name: str) -> None:
    if model_name.startswith(CLIP_LOCAL_PREFIX):
        folder = model_name[len(CLIP_LOCAL_PREFIX) :]
        if not os.path.isfile(os.path.join(folder, "open_clip_config.json")):
            raise ModelUnavailable(
                f"CLIP model folder {folder} has no open_clip_config.json; pass --clip-model "
                "with an open_clip model folder (open_clip_config.json + weights)"
            )


TOKENIZER_FILES = ("tokenizer.json", "sentencepiece.bpe.model", "spiece.model", "vocab.json")


def local_text_tower(model_name: str) -> dict:
    """For a local folder whose text tower or tokenizer comes from Hugging Face transformers
    (the multilingual models: XLM-R and NLLB towers, SigLIP i18n's tokenizer), what makes
    open_clip build it from the folder itself: its config.json and tokenizer, never the hub.
    {} for other models. ModelUnavailable, naming the tokenizer, when the folder lacks it."""
    if not model_name.startswith(CLIP_LOCAL_PREFIX):
        return {}
    folder = model_name[len(CLIP_LOCAL_PREFIX) :]
    with open(os.path.join(folder, "open_clip_config.json"), encoding="utf-8") as file:
        text_cfg = json.load(file).get("model_cfg", {}).get("text_cfg", {})
    hf_name = text_cfg.get("hf_model_name")
    tokenizer = text_cfg.get("hf_tokenizer_name") or hf_name
    if not tokenizer:
        return {}  # open_clip's own tokenizer, shipped in its wheel
    if not any(os.path.isfile(os.path.join(folder, name)) for name in TOKENIZER_FILES):
        tower = f"a Hugging Face text tower ({hf_name})" if hf_name else "a Hugging Face tokenizer"
        raise ModelUnavailable(
            f"CLIP model folder {folder} has {tower} but not its tokenizer: save the "
            f"tokenizer of {tokenizer!r} into the folder (AutoTokenizer.save_pretrained), so "
            "that nothing is fetched at run time"
        )
    if not hf_name or not os.path.isfile(os.path.join(folder, "config.json")):
        return {}  # the text tower's config then comes from the Hugging Face cache
    return {"text_cfg": {**text_cfg, "hf_model_name": folder, "hf_model_pretrained": False}}


def _hub_tokenizer_note(model_name: str) -> str:
    """For a built-in open_clip model whose tokenizer (and text tower) come from the Hugging
    Face hub (xlm-roberta-base-ViT-B-32, nllb-clip-*, *-SigLIP-i18n-*): what else it needs."""
    try:
        import open_clip

        text_cfg = (open_clip.get_model_config(model_name) or {}).get("text_cfg", {})
    except Exception:  # noqa: BLE001  (only a better message is at stake)
        return ""
    tokenizer = text_cfg.get("hf_tokenizer_name")
    if not tokenizer:
        return ""
    tower = " and text tower config" if text_cfg.get("hf_model_name") else ""
    return f", with the tokenizer{tower} of {tokenizer!r} it needs"


PRECISIONS = ("fp32", "bf16", "fp16", "auto")


def fast_dtype_available(device: str) -> str | None:
    """The reduced precision this device runs fast: "fp16" on a GPU, "bf16" on a CPU with
    AVX-512 BF16 or AMX, else None."""
    if device == "cuda":
        return "fp16"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = cpuinfo.read()
    except OSError:
        return None
    return "bf16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else None


def torch_dtype(precision: str, device: str):
    """The torch dtype for a precision name; "auto" is the fast one the device has, or fp32."""
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "auto":
        precision = fast_dtype_available(device) or "fp32"
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


class ClipEmbedder:
    """open_clip model loaded with `create_model_and_transforms` from any open_clip spec.

    `precision` ("fp32", "bf16", "fp16" or "auto") sets the weights' type; vectors always
    come back as normalised float32.
    """

    def __init__(self, spec: str, device: str = "auto", precision: str = "fp32") -> None:
        self.name = spec
        model_name, pretrained = open_clip_name(spec)
        _check_local_dir(model_name)
        text_tower = local_text_tower(model_name)
        model_name = clip_hub_source(model_name, spec)  # before torch: failing takes seconds
        self.device = resolve_device(device)
        try:
            import open_clip
            import torch

            if offline():
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
            model, _, preprocess = open_clip.create_model_and_transforms(
                model_name, pretrained=pretrained, device=self.device, **text_tower
            )
            self.tokenizer = open_clip.get_tokenizer(model_name)
        except Exception as error:  # noqa: BLE001  (hub, config and weight errors alike)
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            reason = reason.split(". ")[0][:200]
            raise ModelUnavailable(
                f"CLIP model {spec!r} could not be loaded ({reason}); download it once with "
                f"network access{_hub_tokenizer_note(model_name)} (cached under HF_HOME), or "
                "pass --clip-model local-dir:/path to an open_clip model folder"
            ) from None
        self._torch = torch
        self.dtype = torch_dtype(precision, self.device)
        self.model = model.eval().to(self.dtype)
        self.preprocess = preprocess
        self.crop_size = _plain_crop_size(preprocess)
        with torch.inference_mode():
            probe = self.model.encode_text(self.tokenizer(["a photo"]).to(self.device))
        self.dim = int(probe.shape[-1])

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Embed RGB images."""
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        batch = self._torch.stack([self.preprocess(image) for image in images])
        batch = batch.to(self.device, self.dtype)
        with self._torch.inference_mode():
            features = self.model.encode_image(batch)
        return normalise(features.float().cpu().numpy())

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts (queries, labels)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        tokens = self.tokenizer(list(texts)).to(self.device)
        with self._torch.inference_mode():
            features = _encode_text(self.model, tokens)
        return normalise(features.float().cpu().numpy())


def _encode_text(model, tokens):
    """`model.encode_text(tokens)`, on tokens cut after the longest text's end token where
    that gives the same features: open_clip's CLIP, whose text tower is causal (no position
    attends to a later one) and pooled at the end token, so the padding after it changes
    nothing. A query of a few words then costs a fraction of the 77-token pass."""
    import open_clip
    import torch

    mask = getattr(model, "attn_mask", None)
    causal = mask is not None and bool(torch.isinf(mask[0, 1:]).all())
    if type(model) is not open_clip.CLIP or model.text_pool_type != "argmax" or not causal:
        return model.encode_text(tokens)
    ends = tokens.argmax(dim=-1)  # the end token has the highest id
    length = int(ends.max()) + 1
    cast = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens[:, :length]).to(cast)
    x = x + model.positional_embedding[:length].to(cast)
    x = model.ln_final(model.transformer(x, attn_mask=mask[:length, :length]))
    x = x[torch.arange(x.shape[0], device=x.device), ends]
    projection = model.text_projection
    if projection is None:
        return x
    return projection(x) if isinstance(projection, torch.nn.Linear) else x @ projection


def _plain_crop_size(preprocess) -> int | None:
    """The square size when `preprocess` starts with the usual bicubic Resize(shorter side)
    and CenterCrop of one size (what `decode.clip_crop` reproduces), else None."""
    from torchvision import transforms

    steps = getattr(preprocess, "transforms", [])
    if len(steps) < 2 or not isinstance(steps[0], transforms.Resize):
        return None
    resize, crop = steps[0], steps[1]
    size = resize.size if isinstance(resize.size, int) else None
    if isinstance(resize.size, (list, tuple)) and len(resize.size) == 1:
        size = resize.size[0]
    bicubic = resize.interpolation == transforms.InterpolationMode.BICUBIC
    if size is None or not bicubic or resize.max_size is not None:
        return None
    if not isinstance(crop, transforms.CenterCrop) or tuple(crop.size) != (size, size):
        return None
    return size
