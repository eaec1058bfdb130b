"""Reuse the ResNet stem's output for a picture seen before, while the stem is not trained.

With the whole stem frozen and its batch-norm layers on their stored statistics, the stem
is a fixed function of the picture's pixels, and on a small model its forward pass is most
of a training step (measured: 0.10 s of 0.16 s for 16 pictures on the tests' judge). Each
epoch sees every picture again, and an entailment CSV has several texts per picture.

The key is a digest of the preprocessed pixels, so a preprocessor that augments (a new
crop every time) simply never hits. The cache holds at most `max_bytes` of outputs; past
that, outputs are computed and not kept.
"""

from __future__ import annotations

import hashlib

DEFAULT_MAX_BYTES = 512 * 2**20


class StemCache:
    """Installed on a stem module (its `forward` is replaced on the instance, so weights and
    state-dict names stay as they are); `remove()` puts the module's own forward back."""

    def __init__(self, stem, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.stem, self.max_bytes = stem, max_bytes
        self._outputs: dict[bytes, object] = {}
        self._bytes = 0
        self.hits = self.misses = 0
        self._own_forward = type(stem).forward.__get__(stem)
        stem.forward = self.forward

    def forward(self, pixels):
        import torch

        keys = [hashlib.blake2b(p.detach().cpu().numpy().tobytes(), digest_size=16).digest()
                for p in pixels]  # fmt: skip
        missing = [i for i, key in enumerate(keys) if key not in self._outputs]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        fresh = {}
        if missing:
            with torch.no_grad():
                computed = self._own_forward(pixels[missing])
            for i, output in zip(missing, computed, strict=True):
                fresh[keys[i]] = output
                self._keep(keys[i], output)
        return torch.stack([self._outputs.get(key, fresh.get(key)) for key in keys])

    def _keep(self, key: bytes, output) -> None:
        size = output.element_size() * output.nelement()
        if self._bytes + size <= self.max_bytes:
            self._outputs[key] = output
            self._bytes += size

    def remove(self) -> None:
        if self.stem.__dict__.get("forward") == self.forward:
            del self.stem.forward
        self._outputs.clear()


def stem_is_fixed(stem, recipe, config) -> bool:
    """Whether the stem's output depends on the pixels alone while training with `recipe`:
    no weight of it trained, batch norm on stored statistics, no random drop path."""
    frozen = all(not p.requires_grad for p in stem.parameters())
    drop_path = getattr(config, "resnet_drop_path_rate", 0.0) or 0.0
    return frozen and recipe.stem_statistics == "frozen" and drop_path == 0
