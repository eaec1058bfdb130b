"""Faster OFA captioning through ModelScope's image-captioning pipeline, same captions.

Why the unmodified pipeline is slow (modelscope 1.40.2,
``modelscope/models/multi_modal/ofa/generate/sequence_generator.py``):
``SequenceGenerator._generate`` hands the decoder an empty dict as ``past_key_values`` on
every step and never stores the cache that ``OFADecoder.forward`` returns, and
``OFADecoder.reorder_incremental_state_scripting`` returns its reordered copy to a caller
that drops it. So every beam-search step re-runs the whole decoder over the whole prefix:

* the cross-attention key/value projections of all ~908 encoder states, for every beam,
  in every layer (``OFAAttention.forward`` with ``key_value_states``), plus
  ``OFADecoder.get_pos_info``'s ``cross_pos_k_linear`` over the encoder positions:
  5.4 GFLOP per step, 91 of the 164 GFLOP a caption costs at the distilled model's size;
* the 59k-word output projection for every prefix position, although only the last is used
  (26 GFLOP per caption instead of 2.6);
* self-attention, FFN and position biases for every prefix position (O(steps^2));
* ``EnsembleModel.reorder_encoder_out`` -> ``OFAEncoder.reorder_encoder_out`` index-selects
  the beam-expanded encoder output *and every encoder layer's hidden states* each step.

Three profiles (``speed_up_captioning(pipeline, profile=...)``):

``"strict"``  bit-identical arithmetic: the unmodified loop and decoder, but the encoder-side
    tensors the loop recomputes from unchanged inputs with unchanged shapes are computed
    once (cross-attention K/V, ``cross_pos_k_linear``) and the no-op encoder reorders are
    skipped. Logits are the same bits as the unmodified pipeline's.
``"exact"``  (default) a real incremental decoder: cross-attention K/V once per image
    (not per beam), a self-attention key/value cache, position biases from tables, the
    output projection for the last position only. Floating-point sums then run in another
    order, so scores differ from the unmodified ones in the last bits (measured: at most
    5e-5 on a cumulative candidate score). A guard watches the beam-search decisions that
    decide the outcome (see ``_guarded_search``): an image for which two such candidates,
    or its two best finished captions, are closer than ``tie_margin`` (default 1e-3) is
    captioned again alone with ``"strict"`` arithmetic. Captions are therefore
    token-identical to the unmodified pipeline's (one-by-one ones, for a batch) as long as
    rounding moves a score by less than ``tie_margin / 2``; on peaked (trained-like)
    distributions the guard rarely fires, on random weights' flat ones often.
``"fast"``  opt-in, captions may change: the ``"exact"`` decoder (no guard) on a private
    bfloat16 copy of the model with a channels_last ResNet stem (oneDNN's AVX-512 BF16 /
    AMX kernels; bf16 without channels_last does not speed the stem up at all) and,
    optionally, a smaller beam (``beam_size``).

In a batched call (``pipeline(images, batch_size=n)``, as ``OfaCaptioner.caption`` makes)
the patched generator encodes the images one at a time (batched, the encoder's attention tensors
outgrow the cache and it got slower per image) and decodes them together, which shares
each step's pass over the output projection between all images.

Threads are not touched (``torch.set_num_threads`` is process-wide). On a 2-core machine
shared with other busy processes, PyTorch's OpenMP threads spin-wait for each other and
two threads were 4-8x slower than one; ``OMP_WAIT_POLICY=PASSIVE`` in the process
environment (read when torch loads) or ``torch.set_num_threads(1)`` avoids that. On an
idle machine two threads make the encoder ~1.8x faster.

Everything the module changes is instance-level on the given pipeline (its generator's
``generate`` attribute); ``restore_captioning`` undoes it. Only the structure of
modelscope 1.40.2 is supported; anything else raises ``OfaSpeedupUnsupported`` at patch
time, and a call the fast path does not cover (prefix tokens, constraints) goes to the
unmodified generator. Not thread-safe (neither is ModelScope's generator).
"""

from __future__ import annotations

from typing import Any

CHECKED_MODELSCOPE_VERSIONS = ("1.40.2",)
PROFILES = ("strict", "exact", "fast")
_ATTR = "_ofa_speed"  # the state object lives on the generator under this name


class OfaSpeedupUnsupported(RuntimeError):
    """The installed ModelScope / model does not have the structure this module patches."""


# --------------------------------------------------------------------------- public API


def speed_up_captioning(
    pipeline: Any,
    *,
    profile: str = "exact",
    beam_size: int | None = None,
    bf16: bool | None = None,
    channels_last: bool | None = None,
    tie_margin: float = 1e-3,
    self_check: bool = True,
    allow_untested_version: bool = False,
) -> dict:
    """Make a loaded ModelScope OFA image-captioning pipeline caption faster, in place.

    ``profile``: ``"exact"`` (default; token-identical captions, see the module docstring),
    ``"strict"`` (bit-identical logits, smaller win) or ``"fast"`` (bfloat16 copy of the
    model; captions may change). ``beam_size`` (fast profile only) overrides the model's
    beam; ``bf16`` / ``channels_last`` override the profile's choice (both only allowed
    where they cannot change captions: ``"fast"``). ``tie_margin`` is the exact profile's
    guard (log-probability units). ``self_check`` compares the incremental decoder with
    the unmodified one on a small synthetic input before patching.

    Returns a dict describing what was changed. Calling it again re-patches from scratch.
    Raises ``OfaSpeedupUnsupported`` if the pipeline / ModelScope version is not one this
    module knows (``allow_untested_version`` skips only the version-number test).
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {PROFILES}")
    lossy = profile == "fast"
    bf16 = lossy if bf16 is None else bf16
    channels_last = lossy if channels_last is None else channels_last
    if not lossy and (bf16 or channels_last or beam_size is not None):
        raise ValueError(
            f"profile {profile!r} keeps captions identical; bf16, channels_last and "
            "beam_size are only allowed with profile='fast'"
        )
    generator, ofa = _checked_parts(pipeline, allow_untested_version)
    restore_captioning(pipeline)
    state = _Speedup(pipeline, generator, ofa, profile, beam_size, bf16, channels_last, tie_margin)
    if self_check and profile != "strict":
        state.self_check()
    generator.generate = state  # instance attribute: shadows SequenceGenerator.generate
    setattr(generator, _ATTR, state)
    return state.describe()


def restore_captioning(pipeline: Any) -> None:
    """Undo ``speed_up_captioning`` on this pipeline (no-op if it was not patched)."""
    generator = getattr(getattr(pipeline, "model", None), "generator", None)
    if generator is not None and getattr(generator, _ATTR, None) is not None:
        vars(generator).pop("generate", None)
        setattr(generator, _ATTR, None)


def captioning_stats(pipeline: Any) -> dict:
    """Counters of the patched pipeline: calls, images, exact-profile guard fallbacks."""
    state = getattr(getattr(pipeline.model, "generator", None), _ATTR, None)
    return dict(state.stats) if state is not None else {}


# --------------------------------------------------------------------------- internals


def _checked_parts(pipeline: Any, allow_untested_version: bool) -> tuple[Any, Any]:
    """(SequenceGenerator, OFAModel) of the pipeline, after checking the structure we patch."""
    import modelscope
    from modelscope.models.multi_modal.ofa import OFAModel
    from modelscope.models.multi_modal.ofa.generate import search as ofa_search
    from modelscope.models.multi_modal.ofa.generate import sequence_generator as sg
    from modelscope.models.multi_modal.ofa.modeling_ofa import OFAAttention, OFADecoderLayer

    version = getattr(modelscope, "__version__", "?")
    if version not in CHECKED_MODELSCOPE_VERSIONS and not allow_untested_version:
        raise OfaSpeedupUnsupported(
            f"modelscope {version} is not one of the versions this patch was checked on "
            f"({', '.join(CHECKED_MODELSCOPE_VERSIONS)}); pass allow_untested_version=True "
            "to try anyway (the self-check still runs)"
        )
    task_model = getattr(pipeline, "model", None)
    generator = getattr(task_model, "generator", None)
    ofa = getattr(task_model, "model", None)

    def need(condition: bool, what: str) -> None:
        if not condition:
            raise OfaSpeedupUnsupported(f"not a supported OFA caption pipeline: {what}")

    need(type(generator) is sg.SequenceGenerator, "model.generator is not a SequenceGenerator")
    need(type(generator.search) is ofa_search.BeamSearch, "generator.search is not BeamSearch")
    need(isinstance(ofa, OFAModel), "model.model is not an OFAModel")
    need(
        hasattr(sg, "EnsembleModel") and callable(getattr(generator, "_generate", None)),
        "SequenceGenerator._generate / EnsembleModel missing",
    )
    from modelscope.utils.constant import Tasks

    task = getattr(getattr(task_model, "cfg", None), "task", None)
    need(task == Tasks.image_captioning, f"task is {task!r}, not image captioning")
    need(not ofa.training, "model is in training mode")
    need(getattr(task_model, "gen_type", "generation") == "generation", "gen_type != generation")
    need(generator.constraint_trie is None, "constraint trie")
    need(generator.constraint_start is None, "constraint range")
    need(generator.lm_model is None, "language-model fusion")
    need(not (generator.gen_code or generator.gen_box), "code / box generation")
    need(not generator.match_source_len and generator.temperature > 0, "generator options")
    dec = ofa.decoder
    cfg = ofa.config
    need(not cfg.use_ofasys, "use_ofasys")
    need(getattr(dec, "adaptive_softmax", None) is None, "adaptive softmax")
    need(dec.output_projection is not None, "no output projection")
    need(len(dec.layers) > 0, "no decoder layers")
    for layer in dec.layers:
        need(type(layer) is OFADecoderLayer, "unknown decoder layer type")
        need(type(layer.self_attn) is OFAAttention, "unknown attention type")
        need(type(layer.cross_attn) is OFAAttention, "unknown attention type")
    for name in (
        "embed_tokens", "embed_positions", "pos_ln", "self_pos_q_linear", "self_pos_k_linear",
        "cross_pos_q_linear", "cross_pos_k_linear", "token_rp_bucket",
        "token_rel_pos_table_list", "pos_scaling", "embed_scale", "layernorm_embedding",
        "layer_norm", "share_attn_bias", "num_attention_heads", "padding_idx",
    ):  # fmt: skip
        need(hasattr(dec, name), f"decoder has no {name}")
    return generator, ofa


class _Speedup:
    """The callable that replaces ``generator.generate`` on one pipeline."""

    def __init__(
        self,
        pipeline: Any,
        generator: Any,
        ofa: Any,
        profile: str,
        beam_size: int | None,
        bf16: bool,
        channels_last: bool,
        tie_margin: float,
    ) -> None:
        import copy
        from collections import OrderedDict

        import torch
        from modelscope.models.multi_modal.ofa.generate import search as ofa_search

        self.profile = profile
        self.generator = generator
        self.original_generate = generator.generate  # the bound class method
        self.ofa = ofa
        self.tie_margin = float(tie_margin)
        # how many hypotheses per image the caller keeps (only their order matters)
        self.keep = max(1, int(getattr(pipeline.model, "num_return_sequences", 1)))
        self.bf16 = bf16
        self.channels_last = channels_last
        self.stats = {"calls": 0, "images": 0, "fallback_images": 0, "passthrough_calls": 0}

        # A private generator (same tokenizer, n-gram blocker and settings) with its own
        # search object, so the guard and a beam override never touch the pipeline's
        # generator, which stays the unmodified fallback. copy.copy of an nn.Module shares
        # its child-module registry, hence the fresh _modules.
        fast = copy.copy(generator)
        fast._modules = OrderedDict(generator._modules)
        if profile == "exact":
            fast.search = _guarded_search(generator, self.tie_margin, self.keep)
        else:
            fast.search = ofa_search.BeamSearch(generator.tokenizer)
        if beam_size is not None:
            if beam_size < 1:
                raise ValueError("beam_size must be >= 1")
            fast.beam_size = min(beam_size, generator.vocab_size - 1)
        self.fast_generator = fast

        self.strict_model = _ensemble_member(ofa, _StrictEncoder(ofa.encoder), ofa.decoder)
        self.fast_model = None
        if profile != "strict":
            model = ofa
            if bf16 or channels_last:
                # A private copy: the pipeline's fp32 model stays untouched (and exact).
                model = copy.deepcopy(ofa)
                if bf16:
                    model = model.to(torch.bfloat16)
                if channels_last:
                    model.encoder.embed_images.to(memory_format=torch.channels_last)
            self.fast_model = _ensemble_member(
                model, _SentenceEncoder(model.encoder, channels_last),
                _IncrementalDecoder(model.decoder),
            )  # fmt: skip

    # -- patch-time checks -----------------------------------------------------------

    def describe(self) -> dict:
        """What this patch changed, for logs and reports."""
        import modelscope

        if self.profile == "strict":
            changes = [
                "cross-attention K/V and cross position keys computed once per call, "
                "not once per step",
                "no-op per-step reorders of the beam-expanded encoder output skipped",
            ]
        else:
            changes = [
                "incremental decoder: self-attention K/V cache, cross-attention K/V once per "
                "image (shared by its beams), position biases from tables, output projection "
                "for the last position only, no per-step encoder-output reorders",
            ]
        if self.profile == "exact":
            changes.append(
                f"near-tie guard (margin {self.tie_margin:g}): an image whose beam-search "
                "outcome rounding could decide is captioned again alone with strict arithmetic"
            )
        if self.bf16:
            changes.append("bfloat16 copy of the model")
        if self.channels_last:
            changes.append("channels_last ResNet stem")
        if self.fast_generator.beam_size != self.generator.beam_size:
            changes.append(f"beam size {self.fast_generator.beam_size}")
        return {
            "profile": self.profile,
            "identical_captions": self.profile != "fast",
            "modelscope_version": getattr(modelscope, "__version__", "?"),
            "beam_size": self.fast_generator.beam_size,
            "original_beam_size": self.generator.beam_size,
            "bf16": self.bf16,
            "channels_last": self.channels_last,
            "tie_margin": self.tie_margin if self.profile == "exact" else None,
            "changes": changes,
        }

    def self_check(self) -> None:
        """Compare the incremental decoder with ``OFADecoder.forward`` on synthetic input.

        Catches a ModelScope whose decoder computes something this module does not
        replicate (which would otherwise silently change captions).
        """
        import torch
        from modelscope.models.multi_modal.ofa.generate.sequence_generator import _expand_mask

        inc = self.fast_model.decoder
        dec = inc.inner
        dtype = next(dec.parameters()).dtype
        gen = torch.Generator().manual_seed(0)
        nsent, beam, src, steps = 2, 3, 11, 5
        enc = torch.randn(nsent, src, dec.embed_dim, generator=gen).to(dtype)
        pos = torch.randn(nsent, src, dec.embed_dim, generator=gen).to(dtype)
        pad = torch.zeros(nsent, src, dtype=torch.bool)
        pad[1, -2:] = True  # exercise the encoder padding mask too
        vocab = dec.embed_tokens.num_embeddings
        tokens = torch.randint(4, max(5, min(vocab, 1000)), (nsent * beam, steps), generator=gen)
        tokens[:, 0] = 0
        rows = torch.arange(nsent).repeat_interleave(beam)
        state: dict = {}
        worst, scale = 0.0, 1.0
        with torch.no_grad():
            for step in range(steps):
                if step == 2:  # a beam reorder within each image, as the search does
                    order = torch.arange(nsent * beam).view(nsent, beam).flip(1).reshape(-1)
                    tokens[:, :step] = tokens[order, :step]
                    inc.reorder_incremental_state_scripting(state, order)
                prefix = tokens[:, : step + 1]
                ref = dec(
                    input_ids=prefix,
                    attention_mask=prefix.eq(dec.padding_idx),
                    encoder_hidden_states=enc[rows],
                    encoder_attention_mask=_expand_mask(pad[rows], dtype, step + 1),
                    code_masks=torch.zeros(len(rows), dtype=torch.bool),
                    src_pos_embed=pos[rows],
                )[0][:, -1].float()
                got = inc.forward(
                    input_ids=prefix,
                    encoder_hidden_states=enc,
                    encoder_attention_mask=_expand_mask(pad, dtype, step + 1),
                    src_pos_embed=pos,
                    past_key_values=state,
                )[0][:, -1].float()
                worst = max(worst, (ref - got).abs().max().item())
                scale = max(scale, ref.abs().max().item())
        tolerance = (3e-2 if dtype == torch.bfloat16 else 1e-4) * scale
        if not worst <= tolerance:
            raise OfaSpeedupUnsupported(
                f"self-check failed: the incremental decoder differs from OFADecoder.forward "
                f"by {worst:.3g} (tolerance {tolerance:.3g}); this ModelScope's decoder is "
                "not the one this module was written for"
            )

    # -- the replacement for generator.generate ----------------------------------------

    def __call__(self, models: list, sample: dict, **kwargs: Any) -> list:
        """``SequenceGenerator.generate(models, sample, **kwargs)``, faster."""
        import torch

        covered = (
            len(models) == 1
            and models[0] is self.ofa
            and set(kwargs) <= {"prefix_tokens", "constraints", "bos_token"}
            and all(value is None for value in kwargs.values())
            and "input_ids" in sample.get("net_input", {})
        )
        self.stats["calls"] += 1
        if not covered:
            self.stats["passthrough_calls"] += 1
            return self.original_generate(models, sample, **kwargs)
        self.stats["images"] += len(sample["net_input"]["input_ids"])
        if self.profile == "strict":
            return self._strict(sample)
        try:
            if self.profile == "fast":
                with torch.no_grad():
                    return self.fast_generator._generate([self.fast_model], sample)
            return self._guarded(sample)
        except _FastPathUnavailable:
            self.stats["passthrough_calls"] += 1
            return self.original_generate(models, sample, **kwargs)

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
        except _NearTie:  # every image tripped the guard: stop early
            finalized = [None] * count
        redo = search.tripped | {
            i
            for i, hypos in enumerate(finalized)
            if hypos and _final_tie(hypos, self.tie_margin, self.keep)
        }
        if not redo:
            return finalized
        self.stats["fallback_images"] += len(redo)
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
        with torch.no_grad(), _memoized(self.ofa.decoder):
            # The pipeline's own generator and settings: identical arithmetic.
            return self.generator._generate([self.strict_model], sample)


def _ensemble_member(ofa: Any, encoder: Any, decoder: Any) -> Any:
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


def _guarded_search(generator: Any, margin: float, keep: int) -> Any:
    """A ``BeamSearch`` that notes the images whose outcome rounding could change.

    ``SequenceGenerator._generate`` uses the ranked ``2 * beam`` candidates of each step in
    three ways, and only these orderings decide which hypotheses exist and finish:

    * eos candidates ranked in the top ``beam`` are finished (a cut after rank ``beam``);
    * the ``beam`` best non-eos candidates continue (a cut after the ``beam``-th of them);
    * if more eos candidates qualify than an image has free slots (``beam`` finished
      hypotheses each), the better-ranked ones win (a cut inside that eos list).

    The order inside the continuing set only permutes beam rows, which are computed
    independently. If each cut separates values at least ``margin`` apart, score errors
    below ``margin / 2`` cannot change the outcome; otherwise the image goes into
    ``tripped`` (and ``_NearTie`` ends the search once every image is in it). Candidates
    at -inf never finish and never beat a finite one, so their order is ignored.
    ``keep`` is how many finished hypotheses the caller returns (their order is checked
    by ``_final_tie``).
    """
    from modelscope.models.multi_modal.ofa.generate.search import BeamSearch

    eos = generator.eos
    inf = float("inf")

    class GuardedBeamSearch(BeamSearch):
        def reset(self, count):
            self.count = count  # images in this call
            self.tripped = set()  # images whose outcome rounding could decide
            self.finished = {}  # image index -> finished hypotheses so far

        def step(self, step, lprobs, scores, prev_output_tokens=None, original_batch_idxs=None):
            # BeamSearch.step (modelscope 1.40.2), with one more candidate from the same
            # topk for the guard; the extra one only matters under an exact tie, which the
            # guard rejects anyway.
            import torch

            bsz, beam, vocab = lprobs.size()
            if step == 0:
                lprobs = lprobs[:, ::beam, :].contiguous()  # all beams are equal at step 0
            else:
                lprobs = lprobs + scores[:, :, step - 1].unsqueeze(-1)
            flat = lprobs.view(bsz, -1)
            k = min(beam * 2, flat.size(1) - 1)  # -1: never select pad
            top = torch.topk(flat, k=min(k + 1, flat.size(1)))
            images = (
                original_batch_idxs.tolist()
                if original_batch_idxs is not None
                else list(range(bsz))
            )
            values, tokens = top.values.tolist(), top.indices.remainder(vocab).tolist()
            for image, vals, toks in zip(images, values, tokens, strict=True):
                if image not in self.tripped and self._unsafe(image, vals, toks, beam):
                    self.tripped.add(image)
                    if len(self.tripped) == self.count:
                        raise _NearTie
            indices = top.indices[:, :k]
            beams = torch.div(indices, vocab, rounding_mode="floor")
            return top.values[:, :k], indices.fmod(vocab), beams

        def _unsafe(self, image, vals, toks, beam):
            edge_in = vals[beam - 1] if len(vals) >= beam else -inf
            edge_out = vals[beam] if len(vals) > beam else -inf
            finishing = []
            for rank, (value, token) in enumerate(zip(vals, toks, strict=True)):
                if token != eos or value == -inf:
                    continue
                if rank < beam:
                    finishing.append(value)
                    if value - edge_out < self.margin:  # could drop out of the top beam
                        return True
                elif edge_in - value < self.margin:  # could move into the top beam
                    return True
            alive = [v for v, t in zip(vals, toks, strict=True) if t != eos and v != -inf]
            if len(alive) >= beam:
                # the best non-eos candidate left out: the next one here, or at most vals[-1]
                left_out = alive[beam] if len(alive) > beam else vals[-1]
                if alive[beam - 1] - left_out < self.margin:
                    return True
            before = self.finished.get(image, 0)
            free = beam - before
            if 0 < free < len(finishing) and finishing[free - 1] - finishing[free] < self.margin:
                return True
            self.finished[image] = min(beam, before + len(finishing))
            return False

    search = GuardedBeamSearch(generator.tokenizer)
    search.margin = margin
    search.keep = keep
    search.reset(1)
    return search


class _FastPathUnavailable(RuntimeError):
    """The incremental decoder met a case it does not handle; the call goes to ModelScope."""


class _NearTie(Exception):
    """Raised inside the exact profile's beam search when rounding could decide it."""


def _final_tie(hypos: list, margin: float, keep: int) -> bool:
    """True if the order of one image's ``keep`` best finished hypotheses is within ``margin``."""
    scores = [float(h["score"]) for h in hypos[: keep + 1]]
    return any(a - b < margin for a, b in zip(scores, scores[1:], strict=False))


class _Memo:
    """A ``forward`` that returns its last result again for the very same input tensor."""

    def __init__(self, forward: Any) -> None:
        self.forward = forward
        self.last_input = None  # kept alive, so ``is`` cannot match a recycled object
        self.last_output = None

    def __call__(self, x):
        if x is not self.last_input:
            self.last_output = self.forward(x)
            self.last_input = x
        return self.last_output


def _memoized(decoder: Any):
    """Context: the decoder's encoder-side projections memoised (see ``_StrictEncoder``).

    ``OFAAttention`` applies ``k_proj`` / ``v_proj`` of a cross-attention layer to the
    encoder output, and ``get_pos_info`` ``cross_pos_k_linear`` to the encoder positions,
    on every step; with the same tensor object in, the same bits come out, so one call per
    beam search is enough. The override is an instance attribute, removed on exit.
    """
    import contextlib

    modules = [decoder.cross_pos_k_linear]
    for layer in decoder.layers:
        modules += [layer.cross_attn.k_proj, layer.cross_attn.v_proj]

    @contextlib.contextmanager
    def scope():
        for module in modules:
            module.forward = _Memo(module.forward)
        try:
            yield
        finally:
            for module in modules:
                vars(module).pop("forward", None)

    return scope()


class _StrictEncoder:
    """The real encoder; ``reorder_encoder_out`` skips reorders that cannot change values.

    The search only ever replaces a beam row by another row of the same image, and those
    rows are identical copies, so such a reorder returns the same object (which keeps the
    decoder's memo valid). Anything else (finished images leaving the batch) is reordered
    as ModelScope does.
    """

    def __init__(self, encoder: Any) -> None:
        self.inner = encoder
        self.reuse = None  # (net_input tensors, output) of a bit-identical encoder run

    def forward(self, **kwargs):
        reuse, self.reuse = self.reuse, None
        if reuse is not None and _same_inputs(reuse[0], kwargs):
            out = type(reuse[1])(**{k: v for k, v in reuse[1].items() if k != "image_of_row"})
        else:
            out = self.inner(**kwargs)
        out["image_of_row"] = None
        return out

    def reorder_encoder_out(self, encoder_out, new_order):
        import torch

        rows = encoder_out["image_of_row"]
        image_of_row = new_order if rows is None else rows.index_select(0, new_order)
        if rows is not None and torch.equal(image_of_row, rows):
            return encoder_out
        # hidden_states (every encoder layer) are never read by the decoder
        out = self.inner.reorder_encoder_out(
            {k: v for k, v in encoder_out.items() if k not in ("hidden_states", "image_of_row")},
            new_order,
        )
        out["image_of_row"] = image_of_row
        return out


def _same_inputs(a: dict, b: dict) -> bool:
    """Same encoder call: the same tensor objects (or equal plain values) for each argument."""
    keys = (set(a) | set(b)) - {"output_hidden_states"}
    return all(
        a.get(k) is b.get(k) or not hasattr(a.get(k), "shape") and a.get(k) == b.get(k)
        for k in keys
    )


class _SentenceEncoder:
    """The real encoder, run once per image; its output is never expanded to the beams.

    A batch is encoded image by image: with 8 images the encoder's (8, heads, 908, 908)
    attention and position-bias tensors no longer fit in cache and it got ~1.7x slower
    per image here, while only the decoder gains from batching. It also makes each
    image's encoder output the same bits as a one-image call's, which the exact profile's
    fallback reuses (``parts``).
    """

    def __init__(self, encoder: Any, channels_last: bool) -> None:
        self.inner = encoder
        self.channels_last = channels_last
        self.parts: list = []  # per image: (encoder arguments, output), of the last call

    def forward(self, **kwargs):
        import torch

        self.parts = []
        count = kwargs["input_ids"].size(0)
        for index in range(count):
            if count == 1:
                inputs = dict(kwargs)
            else:
                # fresh one-image tensors, as the pipeline builds for a one-image call
                inputs = {
                    key: value[index : index + 1].clone() if _per_image(value, count) else value
                    for key, value in kwargs.items()
                }
            self.parts.append((inputs, self._encode(dict(inputs))))
        if count == 1:
            return self.parts[0][1]
        outs = [out for _, out in self.parts]
        return type(outs[0])(
            last_hidden_state=torch.cat([o.last_hidden_state for o in outs]),
            padding_mask=torch.cat([o.padding_mask for o in outs]),
            position_embedding=torch.cat([o.position_embedding for o in outs]),
        )

    def _encode(self, kwargs):
        import torch

        kwargs["output_hidden_states"] = False  # the decoder never reads them (same math)
        dtype = next(self.inner.parameters()).dtype
        for name in ("patch_images", "patch_images_2"):
            image = kwargs.get(name)
            if image is not None:
                image = image.to(dtype)
                if self.channels_last:
                    image = image.contiguous(memory_format=torch.channels_last)
                kwargs[name] = image
        return self.inner(**kwargs)

    def reorder_encoder_out(self, encoder_out, new_order):
        # The incremental decoder tracks which image each beam row belongs to itself.
        return encoder_out


def _per_image(value: Any, count: int) -> bool:
    """Whether an encoder argument is a tensor with one row per image."""
    return hasattr(value, "dim") and value.dim() > 0 and value.size(0) == count


class _IncrementalDecoder:
    """``OFADecoder.forward`` for one new token per step, with caches in ``past_key_values``.

    ``past_key_values`` is the dict ``SequenceGenerator`` passes on every step (and never
    replaces), so the caches live in it. Per beam search it holds: per layer the
    self-attention K/V of the prefix (beam rows) and the cross-attention K/V of each image
    (image rows, shared by that image's beams), the cross position bias per image and
    target position, the encoder padding mask per image, and which image each row is.
    """

    def __init__(self, decoder: Any) -> None:
        self.inner = decoder
        self._tables: dict = {}

    def _position_tables(self, length: int):
        """Position-only quantities (the same for every image): embeddings, biases."""
        import torch
        import torch.nn.functional as F

        dec = self.inner
        key = (length, next(dec.parameters()).dtype)
        if key not in self._tables:
            heads = dec.num_attention_heads
            pos = dec.embed_positions(torch.arange(length))  # (P, d)
            normed = dec.pos_ln(pos)  # get_pos_info(use_image=False) normalises first

            def split(x):  # (P, d) -> (heads, P, head_dim)
                return x.view(length, heads, -1).transpose(0, 1)

            pos_q = split(dec.self_pos_q_linear(normed)) * dec.pos_scaling
            pos_k = split(dec.self_pos_k_linear(normed))
            abs_bias = torch.matmul(pos_q, pos_k.transpose(1, 2))  # (heads, P, P)
            buckets = dec.token_rp_bucket[:length, :length]
            self_bias = []
            for idx in range(len(dec.layers)):
                table = dec.token_rel_pos_table_list[0 if dec.share_attn_bias else idx]
                self_bias.append(abs_bias + F.embedding(buckets, table.weight).permute(2, 0, 1))
            cross_q = split(dec.cross_pos_q_linear(normed)) * dec.pos_scaling
            self._tables = {key: (pos, self_bias, cross_q)}  # keep only the latest
        return self._tables[key]

    def reorder_incremental_state_scripting(self, past_key_values, new_order):
        """Reorder the beam rows of the caches in place (the caller drops return values)."""
        if not past_key_values:
            return
        past_key_values["image"] = past_key_values["image"].index_select(0, new_order)
        past_key_values["self_kv"] = [
            None if kv is None else tuple(t.index_select(0, new_order) for t in kv)
            for kv in past_key_values["self_kv"]
        ]

    def _start(self, state, encoder_hidden_states, encoder_attention_mask, src_pos_embed, rows):
        import torch

        dec = self.inner
        heads = dec.num_attention_heads
        nimages, src, _ = encoder_hidden_states.shape
        if rows % nimages:
            raise _FastPathUnavailable("beam rows are not a multiple of the images")

        def split(x):  # (nimages, S, d) -> (nimages, heads, S, head_dim)
            return x.view(nimages, src, heads, -1).transpose(1, 2)

        # once per image, not once per beam and step as in the unmodified loop
        state["cross_kv"] = [
            (
                split(layer.cross_attn.k_proj(encoder_hidden_states)),
                split(layer.cross_attn.v_proj(encoder_hidden_states)),
            )
            for layer in dec.layers
        ]
        state["pos_k"] = split(dec.cross_pos_k_linear(src_pos_embed))
        state["mask"] = encoder_attention_mask[:, :, -1:, :]  # (nimages, 1, 1, S): 0 or min
        state["cross_bias"] = None
        state["beam"] = rows // nimages
        state["image"] = torch.arange(nimages).repeat_interleave(rows // nimages)
        state["self_kv"] = [None] * len(dec.layers)

    @staticmethod
    def _regroup(state):
        """Check rows are image-major, ``beam`` per image; drop the images that finished."""
        import torch

        beam = state["beam"]
        groups = state["image"].view(-1, beam)
        kept = groups[:, 0]
        if not bool((groups == kept[:, None]).all()):
            raise _FastPathUnavailable("beam rows of different images were interleaved")
        if kept.numel() == state["pos_k"].size(0) and torch.equal(kept, torch.arange(kept.numel())):
            return
        state["cross_kv"] = [(k[kept], v[kept]) for k, v in state["cross_kv"]]
        state["pos_k"] = state["pos_k"][kept]
        state["mask"] = state["mask"][kept]
        state["cross_bias"] = state["cross_bias"][kept]
        state["image"] = torch.arange(kept.numel()).repeat_interleave(beam)

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        encoder_hidden_states=None,
        encoder_attention_mask=None,
        code_masks=None,
        src_pos_embed=None,
        past_key_values=None,
        use_cache=True,
        output_attentions=False,
        output_hidden_states=False,
    ):
        """Logits (rows, 1, vocab) of the next token; same arguments as OFADecoder.forward."""
        import torch
        from transformers.modeling_outputs import BaseModelOutputWithPastAndCrossAttentions

        dec = self.inner
        state = past_key_values
        rows, length = input_ids.shape
        step = length - 1
        if code_masks is not None and bool(code_masks.any()):
            raise _FastPathUnavailable("image-code generation is not supported")
        if bool(input_ids[:, -1].eq(dec.padding_idx).any()):
            raise _FastPathUnavailable("padding inside a generated prefix is not supported")
        if not state:
            self._start(state, encoder_hidden_states, encoder_attention_mask, src_pos_embed, rows)
        table_len = max(32, length)
        pos, self_bias, cross_q = self._position_tables(table_len)
        if state["cross_bias"] is None or state["cross_bias"].size(2) < length:
            # every image's cross-attention position bias for all target positions at once
            state["cross_bias"] = torch.matmul(cross_q[None], state["pos_k"].transpose(2, 3))
        self._regroup(state)
        beam = state["beam"]
        nimages = rows // beam

        x = dec.embed_scale * dec.embed_tokens(input_ids[:, -1:])
        if dec.entangle_position_embedding and not dec.disable_entangle:
            x = x + pos[step]
        if dec.layernorm_embedding is not None:
            x = dec.layernorm_embedding(x)
        x = dec.dropout(x)

        heads = dec.num_attention_heads
        cross_bias = state["cross_bias"][:, :, step : step + 1, :]  # (nimages, heads, 1, S)
        for idx, layer in enumerate(dec.layers):
            # self-attention over the cached prefix (OFAAttention appends the new K/V)
            residual = x
            h = layer.self_attn_layer_norm(x) if layer.normalize_before else x
            bias = self_bias[idx][:, step : step + 1, : step + 1].repeat(rows, 1, 1)
            h, _, present = layer.self_attn(
                hidden_states=h,
                past_key_value=state["self_kv"][idx],
                attention_mask=None,  # no padding inside a generated prefix
                output_attentions=False,
                attn_bias=bias,
            )
            state["self_kv"][idx] = present
            x = _after_attention(layer, h, residual, "self")

            # cross-attention: one K/V per image, broadcast over its beams
            residual = x
            h = layer.cross_attn_layer_norm(x) if layer.normalize_before else x
            key, value = state["cross_kv"][idx]
            h = _cross_attention(
                layer.cross_attn, h, key, value, cross_bias, state["mask"], nimages, heads
            )
            x = _after_attention(layer, h, residual, "cross")

            # feed-forward
            residual = x
            h = layer.final_layer_norm(x) if layer.normalize_before else x
            h = layer.activation_dropout(layer.activation_fn(layer.fc1(h)))
            if layer.ffn_layer_norm:
                h = layer.ffn_layer_norm(h)
            h = layer.dropout(layer.fc2(h))
            if layer.use_gamma_feature:
                h = layer.weight_ffn * h
            x = layer.residual_connection(h, residual)
            if not layer.normalize_before:
                x = layer.final_layer_norm(x)

        if dec.layer_norm is not None:
            x = dec.layer_norm(x)
        logits = dec.output_projection(x)  # the last position only: (rows, 1, vocab)
        return BaseModelOutputWithPastAndCrossAttentions(last_hidden_state=logits)


def _after_attention(layer, h, residual, kind: str):
    """OFADecoderLayer's mid layer norm, dropout, gamma, residual and post-norm."""
    mid = layer.self_attn_mid_layer_norm if kind == "self" else layer.cross_attn_mid_layer_norm
    if mid:
        h = mid(h)
    h = layer.dropout(h)
    if layer.use_gamma_feature:
        h = (layer.weight_self_attn if kind == "self" else layer.weight_cross_attn) * h
    x = layer.residual_connection(h, residual)
    if not layer.normalize_before:
        x = (layer.self_attn_layer_norm if kind == "self" else layer.cross_attn_layer_norm)(x)
    return x


def _cross_attention(attn, h, key, value, bias, mask, nimages: int, heads: int):
    """OFAAttention.forward for cross-attention with per-image K/V shared by the beams.

    ``h``: (rows, 1, d), rows = nimages * beam, image-major; ``key``/``value``:
    (nimages, heads, S, head_dim); ``bias``: (nimages, heads, 1, S); ``mask``:
    (nimages, 1, 1, S). One (beam x head_dim) @ (head_dim x S) product per image and head
    instead of one per beam row.
    """
    import torch
    import torch.nn.functional as F

    rows, _, dim = h.shape
    beam = rows // nimages
    query = attn.q_proj(h) * attn.scaling
    query = query.view(nimages, beam, heads, -1).transpose(1, 2)  # (nimages, heads, beam, hd)
    weights = torch.matmul(query, key.transpose(2, 3))  # (nimages, heads, beam, S)
    weights = weights + bias
    weights = weights + mask
    weights = F.softmax(weights, dim=-1)
    out = torch.matmul(attn.attn_dropout(weights), value)  # (nimages, heads, beam, hd)
    out = out.transpose(1, 2)  # (nimages, beam, heads, hd)
    if attn.c_attn is not None:
        out = out * attn.c_attn[:, None]  # OFA's per-head scale ('bthd,h->bthd')
    return attn.out_proj(out.reshape(rows, 1, dim))
