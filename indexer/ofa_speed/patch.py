"""The callable that replaces ``generator.generate`` on one captioning pipeline."""

from __future__ import annotations

from typing import Any

from .guarded import TIE_MARGIN, NearTie, final_tie, guarded_search
from .incremental import IncrementalDecoder, SentenceEncoder
from .strict import StrictEncoder, memoized


class CaptionSpeedup:
    """``SequenceGenerator.generate`` for one pipeline, with the chosen profile.

    A call the fast path does not cover (several models, prefix tokens, constraints), or
    one in which it raises anything at all, is answered by the unmodified generator: a
    failure costs that call's time, never its captions.
    """

    def __init__(self, task_model: Any, generator: Any, ofa: Any, profile: str) -> None:
        self.profile = profile
        self.generator = generator
        self.original_generate = generator.generate  # the bound class method
        self.ofa = ofa
        # how many hypotheses per image the caller keeps (only their order matters)
        self.keep = max(1, int(getattr(task_model, "num_return_sequences", 1)))
        self.strict_model = ensemble_member(ofa, StrictEncoder(ofa.encoder), ofa.decoder)
        # the exact profile's guard: images decoded, and redone with strict arithmetic
        self.guarded_images = self.redone_images = 0
        self.fast_generator = generator
        self.fast_model = None
        if profile == "exact":
            self.fast_generator = _private_generator(generator, self.keep)
        if profile != "strict":
            self.fast_model = _fast_model(ofa, lossy=profile == "fast")

    def __call__(self, models: list, sample: dict, **kwargs: Any) -> list:
        """``SequenceGenerator.generate(models, sample, **kwargs)``, faster."""
        covered = (
            len(models) == 1
            and models[0] is self.ofa
            and set(kwargs) <= {"prefix_tokens", "constraints", "bos_token"}
            and all(value is None for value in kwargs.values())
            and "input_ids" in sample.get("net_input", {})
        )
        if not covered:
            return self.original_generate(models, sample, **kwargs)
        try:
            return self._generate(sample)
        except Exception:  # noqa: BLE001  (FastPathUnavailable, or a surprise: see the class)
            return self.original_generate(models, sample, **kwargs)

    def _generate(self, sample: dict) -> list:
        import torch

        if self.profile == "strict":
            return self._strict(sample)
        if self.profile == "exact":
            return self._guarded(sample)
        with torch.no_grad():
            return self.fast_generator._generate([self.fast_model], sample)

    def _guarded(self, sample: dict) -> list:
        """The exact profile: incremental decoding; images whose outcome rounding could
        decide are captioned again, one by one, with the unmodified arithmetic."""
        import torch

        count = len(sample["net_input"]["input_ids"])
        # "id" would only renumber the images the search sees; the guard wants 0..count-1
        sample = {key: value for key, value in sample.items() if key != "id"}
        search = self.fast_generator.search
        search.reset(count)
        try:
            with torch.no_grad():
                finalized = list(self.fast_generator._generate([self.fast_model], sample))
        except NearTie:  # every image tripped the guard: stop early
            finalized = [None] * count
        redo = search.tripped | {
            i
            for i, hypos in enumerate(finalized)
            if hypos and final_tie(hypos, TIE_MARGIN, self.keep)
        }
        self.guarded_images += count
        self.redone_images += len(redo)
        parts = self.fast_model.encoder.parts
        for i in sorted(redo):
            # Alone, as the unmodified pipeline captions one image (batch shapes change the
            # last bits), so a batch gives the same captions as one-by-one calls. The
            # image's encoder output was computed alone by the same module on the same
            # input: the unmodified run's bits, so the strict run reuses it.
            inputs = {k: v for k, v in parts[i][0].items() if k != "output_hidden_states"}
            finalized[i] = self._strict({"net_input": inputs}, parts[i])[0]
        return finalized

    def _strict(self, sample: dict, encoder_out: Any = None) -> list:
        import torch

        self.strict_model.encoder.reuse = encoder_out
        with torch.no_grad(), memoized(self.ofa.decoder):
            # The pipeline's own generator and settings: identical arithmetic.
            return self.generator._generate([self.strict_model], sample)


def _private_generator(generator: Any, keep: int) -> Any:
    """A copy of the generator (same tokenizer, n-gram blocker and settings) with the
    guarded search, so the pipeline's generator stays the unmodified fallback."""
    import copy
    from collections import OrderedDict

    private = copy.copy(generator)
    # copy.copy of an nn.Module shares its child-module registry, hence a fresh one
    private._modules = OrderedDict(generator._modules)
    private.search = guarded_search(generator, TIE_MARGIN, keep)
    return private


def _fast_model(ofa: Any, lossy: bool) -> Any:
    """The incremental model: on ``ofa`` itself, or (``lossy``) on a private bfloat16 copy
    with a channels_last ResNet stem, leaving the pipeline's fp32 model untouched. Only
    where the device has native bfloat16 kernels: without them (an AVX2-only CPU) bfloat16
    is emulated, and --fast measured 0.35x the straightforward loop, so it stays fp32."""
    import copy

    import torch

    from indexer.embed import fast_dtype_available

    model = ofa
    device = next(ofa.parameters()).device.type
    lossy = lossy and fast_dtype_available("cuda" if device == "cuda" else "cpu") is not None
    if lossy:
        model = copy.deepcopy(ofa).to(torch.bfloat16)
        # bf16 without channels_last does not speed the stem up at all
        model.encoder.embed_images.to(memory_format=torch.channels_last)
    encoder = SentenceEncoder(model.encoder, channels_last=lossy)
    return ensemble_member(model, encoder, IncrementalDecoder(model.decoder))


def ensemble_member(ofa: Any, encoder: Any, decoder: Any) -> Any:
    """An nn.Module that ``EnsembleModel`` accepts in place of an OFAModel.

    ``EnsembleModel`` only uses ``encoder.forward``, ``encoder.reorder_encoder_out``,
    ``decoder.forward``, ``decoder.reorder_incremental_state_scripting``,
    ``get_normalized_probs`` and ``padding_idx``; it puts its models in an nn.ModuleList,
    hence a Module.
    """
    import torch

    member = torch.nn.Module()
    member.encoder = encoder
    member.decoder = decoder
    member.padding_idx = ofa.padding_idx
    member.get_normalized_probs = ofa.get_normalized_probs
    return member
