"""The exact and fast profiles' model: an encoder run once per image, an incremental decoder.

Both stand in for ``OFAModel.encoder`` / ``OFAModel.decoder`` inside ModelScope's own
``SequenceGenerator._generate`` (see ``patch.ensemble_member``).
"""

from __future__ import annotations

from typing import Any


class FastPathUnavailable(RuntimeError):
    """The incremental decoder met a case it does not handle; the call goes to ModelScope."""


class SentenceEncoder:
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


class IncrementalDecoder:
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
            raise FastPathUnavailable("beam rows are not a multiple of the images")

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
            raise FastPathUnavailable("beam rows of different images were interleaved")
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
        length = input_ids.size(1)
        if code_masks is not None and bool(code_masks.any()):
            raise FastPathUnavailable("image-code generation is not supported")
        if bool(input_ids[:, -1].eq(dec.padding_idx).any()):
            raise FastPathUnavailable("padding inside a generated prefix is not supported")
        if not state:
            rows = input_ids.size(0)
            self._start(state, encoder_hidden_states, encoder_attention_mask, src_pos_embed, rows)
        pos, self_bias, cross_q = self._position_tables(max(32, length))
        if state["cross_bias"] is None or state["cross_bias"].size(2) < length:
            # every image's cross-attention position bias for all target positions at once
            state["cross_bias"] = torch.matmul(cross_q[None], state["pos_k"].transpose(2, 3))
        self._regroup(state)

        x = dec.embed_scale * dec.embed_tokens(input_ids[:, -1:])
        if dec.entangle_position_embedding and not dec.disable_entangle:
            x = x + pos[length - 1]
        if dec.layernorm_embedding is not None:
            x = dec.layernorm_embedding(x)
        x = dec.dropout(x)
        for idx, layer in enumerate(dec.layers):
            x = self._layer(idx, layer, x, state, self_bias[idx], length - 1)
        if dec.layer_norm is not None:
            x = dec.layer_norm(x)
        logits = dec.output_projection(x)  # the last position only: (rows, 1, vocab)
        return BaseModelOutputWithPastAndCrossAttentions(last_hidden_state=logits)

    def _layer(self, idx: int, layer: Any, x, state: dict, self_bias, step: int):
        """``OFADecoderLayer.forward`` for the newest position of every beam row."""
        rows = x.size(0)
        # self-attention over the cached prefix (OFAAttention appends the new K/V)
        residual = x
        h = layer.self_attn_layer_norm(x) if layer.normalize_before else x
        h, _, state["self_kv"][idx] = layer.self_attn(
            hidden_states=h,
            past_key_value=state["self_kv"][idx],
            attention_mask=None,  # no padding inside a generated prefix
            output_attentions=False,
            attn_bias=self_bias[:, step : step + 1, : step + 1].repeat(rows, 1, 1),
        )
        x = _after_attention(layer, h, residual, "self")

        # cross-attention: one K/V per image, broadcast over its beams
        residual = x
        h = layer.cross_attn_layer_norm(x) if layer.normalize_before else x
        key, value = state["cross_kv"][idx]
        bias = state["cross_bias"][:, :, step : step + 1, :]  # (nimages, heads, 1, S)
        h = _cross_attention(layer.cross_attn, h, key, value, bias, state["mask"])
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
        return x


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


def _cross_attention(attn, h, key, value, bias, mask):
    """OFAAttention.forward for cross-attention with per-image K/V shared by the beams.

    ``h``: (rows, 1, d), rows = nimages * beam, image-major; ``key``/``value``:
    (nimages, heads, S, head_dim); ``bias``: (nimages, heads, 1, S); ``mask``:
    (nimages, 1, 1, S). One (beam x head_dim) @ (head_dim x S) product per image and head
    instead of one per beam row.
    """
    import torch
    import torch.nn.functional as F

    rows, _, dim = h.shape
    nimages, heads = key.shape[:2]
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
