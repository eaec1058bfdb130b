"""Faster OFA captioning through ModelScope's image-captioning pipeline, same captions.

Why the unmodified pipeline is slow (modelscope 1.40.2,
``modelscope/models/multi_modal/ofa/generate/sequence_generator.py``):
``SequenceGenerator._generate`` hands the decoder an empty dict as ``past_key_values`` on
every step and never stores the cache that ``OFADecoder.forward`` returns. So every
beam-search step re-runs the whole decoder over the whole prefix:

* the cross-attention key/value projections of all ~908 encoder states, for every beam,
  in every layer, plus ``cross_pos_k_linear`` over the encoder positions: 5.4 GFLOP per
  step, 91 of the 164 GFLOP a caption costs at the distilled model's size;
* the 59k-word output projection for every prefix position, although only the last is used;
* self-attention, FFN and position biases for every prefix position (O(steps^2));
* ``OFAEncoder.reorder_encoder_out`` index-selects the beam-expanded encoder output *and
  every encoder layer's hidden states* each step.

Three profiles (``speed_up_captioning(pipeline, profile=...)``):

``"strict"``  bit-identical arithmetic: the unmodified loop and decoder, but the encoder-side
    projections are computed once per call and the no-op encoder reorders skipped
    (``strict``). Logits are the same bits as the unmodified pipeline's.
``"exact"``  (default) a real incremental decoder (``incremental``): cross-attention K/V
    once per image, not per beam; a self-attention cache; position biases from tables; the
    output projection for the last position only. Sums run in another order, so scores
    differ in the last bits; a guard (``guarded``) sends every image whose beam-search
    outcome such rounding could decide back through ``"strict"`` arithmetic, alone. Captions
    are therefore token-identical to the unmodified pipeline's one-by-one ones as long as
    rounding moves a score by less than half the guard's margin (measured: at most 5e-5
    against a margin of 1e-3). On peaked (trained-like) distributions the guard rarely
    fires, on random weights' flat ones often.
``"fast"``  opt-in, captions may change: the ``"exact"`` decoder (no guard) on a private
    bfloat16 copy of the model with a channels_last ResNet stem (oneDNN's AVX-512 BF16 /
    AMX kernels). The beam size is the model's own.

In a batched call (``pipeline(images, batch_size=n)``) the images are encoded one at a
time (batched, the encoder's attention tensors outgrow the cache) and decoded together.

Threads are not touched (``torch.set_num_threads`` is process-wide). On a 2-core machine
shared with other busy processes, PyTorch's OpenMP threads spin-wait for each other and
two threads were 4-8x slower than one; ``OMP_WAIT_POLICY=PASSIVE`` in the process
environment (read when torch loads) or ``torch.set_num_threads(1)`` avoids that.

Only ModelScope 1.40.2 is supported (``gate``). Anything else, any structure the gate
does not recognise, and any error while building the patch or self-checking it raises
``OfaSpeedupUnsupported`` and leaves the pipeline unpatched. Once patched, a call the fast
path does not cover (prefix tokens, constraints), or one in which it raises anything at
all, is answered by the unmodified generator. Everything changed is instance-level on the
given pipeline's generator. Not thread-safe (neither is ModelScope's generator).

``entailment`` holds the visual-entailment reranker's batched scoring, behind the same gate.
"""

from __future__ import annotations

from typing import Any

from .gate import CHECKED_MODELSCOPE_VERSIONS, OfaSpeedupUnsupported

PROFILES = ("strict", "exact", "fast")

__all__ = ["CHECKED_MODELSCOPE_VERSIONS", "PROFILES", "OfaSpeedupUnsupported",
           "speed_up_captioning"]  # fmt: skip


def speed_up_captioning(pipeline: Any, *, profile: str = "exact") -> None:
    """Make a loaded ModelScope OFA image-captioning pipeline caption faster, in place.

    ``profile``: ``"exact"`` (default; token-identical captions), ``"strict"`` (bit-identical
    logits, smaller win) or ``"fast"`` (bfloat16 copy of the model; captions may change);
    see the package docstring. Calling it again re-patches from scratch.

    Raises ``ValueError`` for an unknown profile and ``OfaSpeedupUnsupported`` (one-line
    reason; the pipeline is then left unpatched) for anything else that goes wrong.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {PROFILES}")
    from .gate import caption_parts, unsupported_on_error

    with unsupported_on_error("checking the caption pipeline"):
        task_model, generator, ofa = caption_parts(pipeline)
    # an earlier patch is an instance attribute shadowing SequenceGenerator.generate
    vars(generator).pop("generate", None)
    with unsupported_on_error("building the speed-up"):
        from .patch import CaptionSpeedup

        state = CaptionSpeedup(task_model, generator, ofa, profile)
    if state.fast_model is not None:
        with unsupported_on_error("self-checking the incremental decoder"):
            from .self_check import check_incremental_decoder

            check_incremental_decoder(state.fast_model.decoder)
    generator.generate = state
