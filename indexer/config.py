"""Settings: defaults, then INDEXER_* environment variables, then explicit overrides (flags)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path

DEFAULT_CAPTION_MODEL = "damo/ofa_image-caption_coco_distilled_en"
DEFAULT_CLIP_MODEL = "hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K"
# OFA visual entailment for the reranker and the audit: distilled on a CPU, large on a GPU
DEFAULT_RERANK_MODEL_CPU = "damo/ofa_visual-entailment_snli-ve_distilled_v2_en"
DEFAULT_RERANK_MODEL_GPU = "iic/ofa_visual-entailment_snli-ve_large_en"
DEFAULT_DEVICE = "auto"
DEFAULT_BATCH_SIZE = 8
DEVICES = ("auto", "cpu", "cuda")

# Field name -> environment variable that sets it.
ENV_VARS = {
    "index_dir": "INDEXER_HOME",
    "caption_model": "INDEXER_CAPTION_MODEL",
    "clip_model": "INDEXER_CLIP_MODEL",
    "device": "INDEXER_DEVICE",
    "batch_size": "INDEXER_BATCH_SIZE",
    "rerank_model": "INDEXER_RERANK_MODEL",
    "trust_remote_code": "INDEXER_TRUST_REMOTE_CODE",
    "profile": "INDEXER_PROFILE",
    "captions": "INDEXER_CAPTIONS",
    "ocr": "INDEXER_OCR",
}
PROFILES = ("default", "fast")
# now: caption in the same pass as CLIP; later: every photo searchable by CLIP first, then
# a captions pass; never: no captions (CLIP only)
CAPTION_MODES = ("later", "now", "never")


def default_index_dir() -> Path:
    """The per-user data directory that holds the index when none is given."""
    import platformdirs

    return platformdirs.user_data_path("photo-indexer", appauthor=False)


@dataclass(frozen=True)
class Settings:
    """Everything a build needs to know besides the folders to scan."""

    index_dir: Path
    caption_model: str = DEFAULT_CAPTION_MODEL
    clip_model: str = DEFAULT_CLIP_MODEL
    device: str = DEFAULT_DEVICE
    batch_size: int = DEFAULT_BATCH_SIZE
    rerank_model: str | None = None  # None: chosen by device (see search.rerank)
    trust_remote_code: bool = False  # let a model folder run its own Python code
    profile: str = "default"  # "fast": bfloat16 + channels-last, captions may change
    captions: str = "later"  # one of CAPTION_MODES
    ocr: bool = True  # read the text in photos (indexer.ocr)


def _convert(name: str, value: object) -> object:
    if name == "index_dir":
        return Path(os.path.expanduser(str(value))).absolute()
    if name == "batch_size":
        try:
            number = int(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValueError(f"batch size must be a whole number, not {value!r}") from None
        if number < 1:
            raise ValueError(f"batch size must be at least 1, not {number}")
        return number
    if name in ("trust_remote_code", "ocr"):
        return value is True or str(value).lower() in ("1", "true", "yes", "on")
    if name == "profile" and value not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}, not {value!r}")
    if name == "captions" and value not in CAPTION_MODES:
        raise ValueError(f"captions must be one of {', '.join(CAPTION_MODES)}, not {value!r}")
    if name == "device" and value not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, not {value!r}")
    return str(value)


def load_settings(
    overrides: Mapping[str, object] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build Settings from defaults, then environment variables, then `overrides`.

    Overrides whose value is None are ignored, so CLI flags that were not given fall through.
    Raises ValueError with a one-line message for a bad value.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for name, var in ENV_VARS.items():
        if environ.get(var):
            values[name] = environ[var]
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = value
    values.setdefault("index_dir", default_index_dir())
    known = {f.name for f in fields(Settings)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
    settings = Settings(index_dir=Path("."))
    return replace(settings, **{name: _convert(name, value) for name, value in values.items()})
