"""Finding model files: local folders first, then the hubs' caches, then the hubs.

Every model spec may be a local folder. A hub id is looked up in the local cache before
any network access, and a failure says which model, where it looked and how to fix it.
Set INDEXER_OFFLINE=1 (or HF_HUB_OFFLINE=1 / MODELSCOPE_OFFLINE=1) to never try the network.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import ModelUnavailable

CLIP_LOCAL_PREFIX = "local-dir:"


def offline() -> bool:
    """True when the user asked for no network access."""
    return any(
        os.environ.get(var, "").lower() in ("1", "true", "yes")
        for var in ("INDEXER_OFFLINE", "HF_HUB_OFFLINE", "MODELSCOPE_OFFLINE")
    )


def looks_like_path(spec: str) -> bool:
    """True for specs written as file-system paths rather than hub ids."""
    return spec.startswith(("/", "./", "../", "~")) or os.path.isdir(os.path.expanduser(spec))


@contextmanager
def contained_side_effects() -> Iterator[None]:
    """Undo what importing ModelScope's OFA does to the whole process: fairseq configures the
    root logger at DEBUG, and the OFA preprocessors switch off Pillow's bomb and truncation
    checks. Wrap the first import of modelscope pipelines in this."""
    from PIL import Image, ImageFile

    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    limit, truncated = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
    try:
        yield
    finally:
        root.setLevel(level)
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
        Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = limit, truncated


def resolve_device(device: str) -> str:
    """'auto' becomes 'cuda' when a GPU is usable, else 'cpu'."""
    if device != "auto":
        if device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise ModelUnavailable("device cuda was asked for but no CUDA GPU is usable here")
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_modelscope_pipeline(
    task: str, spec: str, role: str, flag: str, device: str, trust_remote_code: bool = False
):
    """A ModelScope pipeline for `task` ("image-captioning", "visual-entailment") from the
    model `spec` (hub id or folder); ModelUnavailable with one line when it cannot load."""
    folder = modelscope_model_dir(spec, role, flag)
    device = resolve_device(device)
    try:
        with contained_side_effects():
            from modelscope.pipelines import pipeline

            return pipeline(task, model=folder, device=device,
                            trust_remote_code=trust_remote_code)  # fmt: skip
    except Exception as error:  # noqa: BLE001  (ModelScope raises many kinds)
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        message = f"{role} {spec!r} could not be loaded from {folder}: {reason}"
        raise ModelUnavailable(message) from None


def modelscope_model_dir(spec: str, role: str, flag: str) -> str:
    """A local folder holding the ModelScope model `spec` (a folder, or a hub id to fetch).

    `role` names the model in messages ("caption model"), `flag` the option that sets it.
    """
    if looks_like_path(spec):
        folder = os.path.abspath(os.path.expanduser(spec))
        if not os.path.isfile(os.path.join(folder, "configuration.json")):
            raise ModelUnavailable(
                f"{role} folder {folder} has no configuration.json; pass {flag} with a "
                "ModelScope model folder"
            )
        return folder
    from modelscope.hub.snapshot_download import snapshot_download

    cache = os.environ.get("MODELSCOPE_CACHE", os.path.expanduser("~/.cache/modelscope"))
    try:
        return snapshot_download(spec, local_files_only=True)
    except Exception:  # noqa: BLE001  (any cache miss: fall through to the download)
        pass
    how = (
        f"download it once with network access, point MODELSCOPE_CACHE at a cache that "
        f"has it, or pass {flag} /path/to/model-folder"
    )
    if offline():
        raise ModelUnavailable(f"{role} {spec!r} is not in the ModelScope cache {cache} and "
                               f"offline mode is on; {how}")  # fmt: skip
    try:
        return snapshot_download(spec)
    except Exception as error:  # noqa: BLE001  (network, auth, missing repo: all one answer)
        reason = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
        raise ModelUnavailable(
            f"{role} {spec!r} is not in the ModelScope cache {cache} and could not be "
            f"downloaded ({reason}); {how}"
        ) from None
