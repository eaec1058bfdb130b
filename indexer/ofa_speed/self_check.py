"""Before patching: does the incremental decoder compute what ``OFADecoder.forward`` does?"""

from __future__ import annotations

from typing import Any

from .gate import OfaSpeedupUnsupported

IMAGES, BEAM, SOURCE, STEPS = 2, 3, 11, 5  # the synthetic beam search's size


def check_incremental_decoder(incremental: Any) -> None:
    """Compare ``incremental`` (an ``IncrementalDecoder``) with the decoder it wraps on a
    small synthetic beam search, a beam reorder included.

    Catches a ModelScope whose decoder computes something this package does not replicate
    (which would otherwise silently change captions): raises ``OfaSpeedupUnsupported``.
    """
    import torch

    worst, scale = _largest_difference(incremental)
    dtype = next(incremental.inner.parameters()).dtype
    tolerance = (3e-2 if dtype == torch.bfloat16 else 1e-4) * scale
    if not worst <= tolerance:
        raise OfaSpeedupUnsupported(
            f"self-check failed: the incremental decoder differs from OFADecoder.forward "
            f"by {worst:.3g} (tolerance {tolerance:.3g})"
        )


def _synthetic_inputs(dec: Any):
    """Encoder states, positions, a padding mask (per image) and token prefixes (per row)."""
    import torch

    dtype = next(dec.parameters()).dtype
    gen = torch.Generator().manual_seed(0)
    enc = torch.randn(IMAGES, SOURCE, dec.embed_dim, generator=gen).to(dtype)
    pos = torch.randn(IMAGES, SOURCE, dec.embed_dim, generator=gen).to(dtype)
    pad = torch.zeros(IMAGES, SOURCE, dtype=torch.bool)
    pad[1, -2:] = True  # exercise the encoder padding mask too
    vocab = dec.embed_tokens.num_embeddings
    tokens = torch.randint(4, max(5, min(vocab, 1000)), (IMAGES * BEAM, STEPS), generator=gen)
    tokens[:, 0] = 0
    return enc, pos, pad, tokens


def _largest_difference(incremental: Any) -> tuple[float, float]:
    """(largest logit difference, largest reference logit, at least 1) over the steps."""
    import torch
    from modelscope.models.multi_modal.ofa.generate.sequence_generator import _expand_mask

    dec = incremental.inner
    dtype = next(dec.parameters()).dtype
    enc, pos, pad, tokens = _synthetic_inputs(dec)
    rows = torch.arange(IMAGES).repeat_interleave(BEAM)
    state: dict = {}
    worst, scale = 0.0, 1.0
    with torch.no_grad():
        for step in range(STEPS):
            if step == 2:  # a beam reorder within each image, as the search does
                order = torch.arange(IMAGES * BEAM).view(IMAGES, BEAM).flip(1).reshape(-1)
                tokens[:, :step] = tokens[order, :step]
                incremental.reorder_incremental_state_scripting(state, order)
            prefix = tokens[:, : step + 1]
            ref = dec(
                input_ids=prefix,
                attention_mask=prefix.eq(dec.padding_idx),
                encoder_hidden_states=enc[rows],
                encoder_attention_mask=_expand_mask(pad[rows], dtype, step + 1),
                code_masks=torch.zeros(len(rows), dtype=torch.bool),
                src_pos_embed=pos[rows],
            )[0][:, -1].float()
            got = incremental.forward(
                input_ids=prefix,
                encoder_hidden_states=enc,
                encoder_attention_mask=_expand_mask(pad, dtype, step + 1),
                src_pos_embed=pos,
                past_key_values=state,
            )[0][:, -1].float()
            worst = max(worst, (ref - got).abs().max().item())
            scale = max(scale, ref.abs().max().item())
    return worst, scale
