"""Finding model files: local folders first, then the hubs' caches, then the hubs.

Every model spec may be a local folder. A hub id is looked up in the local cache before
any network access, and a failure says which model, where it looked and how to fix it.
Set INDEXER_OFFLINE=1 (or HF_HUB_OFFLINE=1 / MODELSCOPE_OFFLINE=1) to never try the network.
Without it, a hub that does not answer a quick probe counts as no network: the hub clients
would retry it for half a minute and more, printing warnings, before failing the same way.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import ModelUnavailable

CLIP_LOCAL_PREFIX = "local-dir:"
CLIP_HUB_PREFIX = "hf-hub:"
# open_clip's names for the files of an `hf-hub:` model (open_clip.constants)
CLIP_CONFIG = "open_clip_config.json"
CLIP_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
PROBE_TIMEOUT_S = 3.0


def offline() -> bool:
    """True when the user asked for no network access."""
    return any(
        os.environ.get(var, "").lower() in ("1", "true", "yes")
        for var in ("INDEXER_OFFLINE", "HF_HUB_OFFLINE", "MODELSCOPE_OFFLINE")
    )


def hub_reachable(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True when one HEAD request to `url` gets any HTTP answer within `timeout` seconds. It
    goes through requests, as the hub clients do, so the same proxy variables apply."""
    import requests

    answered = []

    def probe() -> None:
        try:
            requests.head(url, timeout=timeout, allow_redirects=False)
            answered.append(True)
        except requests.RequestException:
            pass

    thread = threading.Thread(target=probe, name="hub-probe", daemon=True)
    thread.start()
    thread.join(timeout)  # requests' timeout does not bound the name lookup; this does
    return bool(answered)


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
    check_ofa_vocabulary(folder, spec, role)
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


# The tokenizer files of ModelScope's OFA models, by `model.language` in configuration.json:
# English ones read a byte-level BPE, Chinese ones (the *_zh models) a WordPiece vocab.txt.
OFA_VOCABULARY = {"en": ("vocab.json", "merges.txt"), "zh": ("vocab.txt",), "cn": ("vocab.txt",)}


def check_ofa_vocabulary(folder: str, spec: str, role: str) -> None:
    """ModelUnavailable, naming the missing files, when an OFA model folder lacks its
    tokenizer's vocabulary (ModelScope would fail later with a less telling error)."""
    try:
        with open(os.path.join(folder, "configuration.json"), encoding="utf-8") as file:
            model = json.load(file).get("model", {})
    except (OSError, ValueError):
        return  # ModelScope's own loader reports an unreadable configuration
    if model.get("type") != "ofa":
        return
    language = model.get("language", "en")
    missing = [name for name in OFA_VOCABULARY.get(language, ())
               if not os.path.isfile(os.path.join(folder, name))]  # fmt: skip
    if missing:
        raise ModelUnavailable(
            f"{role} {spec!r} has no tokenizer in {folder}: its {language!r} OFA tokenizer "
            f"needs {' and '.join(missing)} beside configuration.json"
        )


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
    from modelscope.hub.api import HubApi

    endpoint = HubApi().endpoint
    if not hub_reachable(endpoint):
        raise ModelUnavailable(f"{role} {spec!r} is not in the ModelScope cache {cache} and "
                               f"could not be downloaded (no network: {endpoint} did not "
                               f"answer); {how}")  # fmt: skip
    try:
        return snapshot_download(spec)
    except Exception as error:  # noqa: BLE001  (network, auth, missing repo: all one answer)
        reason = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
        raise ModelUnavailable(
            f"{role} {spec!r} is not in the ModelScope cache {cache} and could not be "
            f"downloaded ({reason}); {how}"
        ) from None


def clip_hub_source(model_name: str, spec: str) -> str:
    """What open_clip should load for `model_name`: for an `hf-hub:` id in the Hugging Face
    cache, its cached folder as `local-dir:` (so nothing touches the network); for one not
    cached, the id itself once the hub answers. Other names come back as they are.
    ModelUnavailable with one line when the model is neither cached nor downloadable."""
    if not model_name.startswith(CLIP_HUB_PREFIX):
        return model_name
    from huggingface_hub import constants

    config = _cached_clip_config(model_name[len(CLIP_HUB_PREFIX) :])
    if config and _names_hf_tokenizer(config):  # only open_clip's hub path finds that one
        return model_name
    if config:
        return CLIP_LOCAL_PREFIX + os.path.dirname(config)
    where = (f"CLIP model {spec!r} could not be loaded: it is not in the Hugging Face cache "
             f"{constants.HF_HUB_CACHE}")  # fmt: skip
    how = ("download it once with network access, point HF_HOME at a cache that has it, or "
           "pass --clip-model local-dir:/path to an open_clip model folder")  # fmt: skip
    if offline():
        raise ModelUnavailable(f"{where} and offline mode is on; {how}")
    if not hub_reachable(constants.ENDPOINT):
        raise ModelUnavailable(f"{where} and could not be downloaded (no network: "
                               f"{constants.ENDPOINT} did not answer); {how}")  # fmt: skip
    return model_name


def _cached_clip_config(repo: str) -> str | None:
    """The cached config file of `repo` when the cache holds its weights too, else None."""
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(repo, CLIP_CONFIG)
    if not isinstance(config, str):  # None, or the marker for a file the hub said is missing
        return None
    if not any(isinstance(try_to_load_from_cache(repo, name), str) for name in CLIP_WEIGHTS):
        return None
    return config


def _names_hf_tokenizer(config: str) -> bool:
    try:
        with open(config, encoding="utf-8") as file:
            text_cfg = json.load(file).get("model_cfg", {}).get("text_cfg", {})
    except (OSError, ValueError, AttributeError):
        return True  # unreadable: let open_clip load it and say what is wrong
    return bool(text_cfg.get("hf_tokenizer_name"))
