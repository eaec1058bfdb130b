"""The models a machine needs, in the caches the loaders read: which are there, and fetching
them all in one go, so a machine can be prepared once and used offline afterwards.

Caption and rerank models are ModelScope models (ModelScope's cache, MODELSCOPE_CACHE);
CLIP models named `hf-hub:ORG/REPO` are Hugging Face repositories (HF_HOME). A local folder
is used where it is and never fetched.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass

from .errors import ModelUnavailable
from .hub import CLIP_HUB_PREFIX, CLIP_LOCAL_PREFIX, hub_reachable, looks_like_path, offline

ROLES = {"caption": "--caption-model", "clip": "--clip-model", "rerank": "--rerank-model"}


@dataclass
class CachedModel:
    """One model the settings name: its role, its spec, where it is (None: not on this
    machine) and its size on disk in bytes."""

    role: str
    spec: str
    source: str  # "modelscope", "huggingface", "folder" or "open_clip" (ARCH@PRETRAINED)
    path: str | None = None
    size: int | None = None

    def as_dict(self) -> dict:
        """JSON-ready fields."""
        return asdict(self)


def source_of(spec: str) -> str:
    """Where a model spec comes from: a local "folder", "huggingface" (an `hf-hub:` CLIP)
    or "modelscope" (an OFA model id)."""
    if spec.startswith(CLIP_LOCAL_PREFIX) or looks_like_path(spec):
        return "folder"
    if spec.startswith(CLIP_HUB_PREFIX):
        return "huggingface"
    return "modelscope" if "/" in spec and "@" not in spec else "open_clip"


def configured_models(settings, rerank_spec: str) -> list[CachedModel]:
    """The caption, CLIP and rerank models of `settings` (defaults, variables, flags), each
    looked up where its loader would look, without touching the network."""
    specs = {"caption": settings.caption_model, "clip": settings.clip_model, "rerank": rerank_spec}
    models = [CachedModel(role, spec, source_of(spec)) for role, spec in specs.items()]
    for model in models:
        model.path = locate(model)
        model.size = folder_size(model.path) if model.path else None
    return models


def locate(model: CachedModel) -> str | None:
    """The folder holding `model` on this machine, or None."""
    if model.source == "folder":
        folder = os.path.expanduser(model.spec.removeprefix(CLIP_LOCAL_PREFIX))
        return os.path.abspath(folder) if os.path.isdir(folder) else None
    if model.source == "open_clip":
        return None  # open_clip's own pretrained cache; `indexer build` fetches it on first use
    if model.source == "huggingface":
        from huggingface_hub import snapshot_download

        try:
            return snapshot_download(model.spec[len(CLIP_HUB_PREFIX) :], local_files_only=True)
        except Exception:  # noqa: BLE001  (not cached, in any of the ways the hub says so)
            return None
    from modelscope.hub.snapshot_download import snapshot_download

    try:
        return snapshot_download(model.spec, local_files_only=True)
    except Exception:  # noqa: BLE001  (likewise)
        return None


def fetch_models(
    models: list[CachedModel], on_model: Callable[[int, int, CachedModel], None] | None = None
) -> list[CachedModel]:
    """Download every model of `models` not yet on this machine into its cache; return them
    all with their paths and sizes. `on_model(done, total, model)` follows the progress.

    Raises ModelUnavailable with one line, before downloading anything, when a model is
    missing and the network is off or unreachable (or a local folder does not exist).
    """
    report = on_model or (lambda done, total, model: None)
    missing = [model for model in models if model.path is None]
    for model in missing:
        _check_fetchable(model)
    for done, model in enumerate(models, start=1):
        if model.path is None:
            model.path = _download(model)
            model.size = folder_size(model.path)
        report(done, len(models), model)
    return models


def _check_fetchable(model: CachedModel) -> None:
    flag = ROLES[model.role]
    if model.source == "folder":
        raise ModelUnavailable(f"{model.role} model folder {model.spec} does not exist; pass "
                               f"{flag} with a model folder")  # fmt: skip
    if model.source == "open_clip":
        raise ModelUnavailable(f"{model.role} model {model.spec!r} is fetched by open_clip on "
                               "first use; name it hf-hub:ORG/REPO to fetch it here")  # fmt: skip
    if offline():
        raise ModelUnavailable(f"{model.role} model {model.spec!r} is not on this machine and "
                               "offline mode is on (INDEXER_OFFLINE / HF_HUB_OFFLINE)")  # fmt: skip
    endpoint = _endpoint(model.source)
    if not hub_reachable(endpoint):
        raise ModelUnavailable(f"{model.role} model {model.spec!r} is not on this machine and "
                               f"cannot be downloaded (no network: {endpoint} did not "
                               "answer)")  # fmt: skip


def _endpoint(source: str) -> str:
    if source == "huggingface":
        from huggingface_hub import constants

        return constants.ENDPOINT
    from modelscope.hub.api import HubApi

    return HubApi().endpoint


def _download(model: CachedModel) -> str:
    try:
        if model.source == "huggingface":
            from huggingface_hub import snapshot_download

            return snapshot_download(model.spec[len(CLIP_HUB_PREFIX) :])
        from modelscope.hub.snapshot_download import snapshot_download

        return snapshot_download(model.spec)
    except Exception as error:  # noqa: BLE001  (network, auth, missing repo: one answer)
        reason = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
        raise ModelUnavailable(f"{model.role} model {model.spec!r} could not be downloaded "
                               f"({reason})") from None  # fmt: skip


def folder_size(path: str) -> int:
    """Bytes of the files under `path` (links followed, as the loaders read them)."""
    total = 0
    for folder, _, names in os.walk(path, followlinks=True):
        for name in names:
            try:
                total += os.stat(os.path.join(folder, name)).st_size
            except OSError:
                continue
    return total
