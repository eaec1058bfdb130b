"""One optimizer step at a time: AdamW, the learning-rate schedule, the ResNet stem's
batch-norm policy, gradient clipping, and the state a checkpoint keeps.

Every step is a function of (weights, optimizer state, step number, seed, rows): dropout
draws from a generator seeded by the seed and the step, so a resumed run takes the same
steps the interrupted one would have taken.
"""

from __future__ import annotations

import time
from collections import deque

from .recipe import Recipe, learning_rate
from .stem_cache import StemCache, stem_is_fixed


class Loop:
    """Trains `trainee.net` for `total` steps of `recipe`."""

    def __init__(self, trainee, recipe: Recipe, total: int) -> None:
        import torch

        self.trainee, self.recipe, self.total = trainee, recipe, total
        self.stem = trainee.net.encoder.embed_images
        for name, module in self.stem.named_children():
            if name in recipe.frozen_stem:
                module.requires_grad_(False)
        self.parameters = [p for p in trainee.net.parameters() if p.requires_grad]
        fixed = stem_is_fixed(self.stem, recipe, trainee.net.config)
        self.stem_cache = StemCache(self.stem) if fixed else None
        self.optimizer = torch.optim.AdamW(
            self.parameters, lr=recipe.lr, weight_decay=recipe.weight_decay
        )
        self._losses: deque[float] = deque(maxlen=20)
        self._images, self._seconds = 0, 0.0

    def step(self, step: int, items: list) -> None:
        """One optimizer step on `items`, (row, picture) pairs (none: the step is skipped)."""
        import torch

        if not items:
            return
        started = time.monotonic()
        self._train_mode()
        batch = self.trainee.collate([self.trainee.sample(p, row) for row, p in items])
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(self.recipe, step, self.total)
        self.optimizer.zero_grad(set_to_none=True)
        device = self.trainee.device
        gpus = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=gpus):  # dropout: seeded by step, caller's RNG kept
            torch.manual_seed(self.recipe.seed * 1_000_003 + step)
            loss, _, _ = self.trainee.loss(batch, self.recipe.label_smoothing)
            loss.backward()
        if self.recipe.clip_norm:
            torch.nn.utils.clip_grad_norm_(self.parameters, self.recipe.clip_norm)
        self.optimizer.step()
        self._losses.append(loss.item())
        self._images += len(items)
        self._seconds += time.monotonic() - started

    def _train_mode(self) -> None:
        """Dropout on; the stem's BatchNorm layers normalise with their stored statistics
        ("frozen") or with each batch's while updating the stored ones ("batch", frozen
        stem modules included: a random model's stored statistics are meaningless, and
        inference must find ones that fit the layers after them)."""
        import torch

        self.trainee.net.train()
        if self.recipe.stem_statistics == "frozen":
            for module in self.stem.modules():
                if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                    module.eval()

    def close(self) -> None:
        """Give the stem its own forward pass back."""
        if self.stem_cache is not None:
            self.stem_cache.remove()

    @property
    def recent_loss(self) -> float | None:
        return sum(self._losses) / len(self._losses) if self._losses else None

    @property
    def images_per_second(self) -> float | None:
        return self._images / self._seconds if self._seconds > 0 else None

    def state(self, step: int) -> dict:
        """What a checkpoint keeps: weights, optimizer state, the next step's number."""
        return {
            "step": step,
            "model": self.trainee.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
        }
