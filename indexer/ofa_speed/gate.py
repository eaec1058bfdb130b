"""The gate: which ModelScope this package was checked on, and what it reaches inside it.

Everything here raises ``OfaSpeedupUnsupported`` with a one-line reason, never anything
else, so a caller can fall back to ModelScope's own code with a notice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

CHECKED_MODELSCOPE_VERSIONS = ("1.40.2",)

# Attributes the incremental decoder and the strict memo read (modelscope 1.40.2's
# OFADecoder, OFADecoderLayer and OFAAttention); the self-check tests what they compute.
DECODER_ATTRIBUTES = (
    "embed_tokens", "embed_positions", "pos_ln", "self_pos_q_linear", "self_pos_k_linear",
    "cross_pos_q_linear", "cross_pos_k_linear", "token_rp_bucket", "token_rel_pos_table_list",
    "pos_scaling", "embed_scale", "layernorm_embedding", "layer_norm", "share_attn_bias",
    "num_attention_heads", "padding_idx", "entangle_position_embedding", "disable_entangle",
    "dropout", "output_projection", "embed_dim", "layers",
)  # fmt: skip
LAYER_ATTRIBUTES = (
    "self_attn", "cross_attn", "self_attn_layer_norm", "cross_attn_layer_norm",
    "final_layer_norm", "self_attn_mid_layer_norm", "cross_attn_mid_layer_norm",
    "ffn_layer_norm", "normalize_before", "activation_fn", "activation_dropout", "fc1", "fc2",
    "dropout", "use_gamma_feature", "residual_connection",
)  # fmt: skip
ATTENTION_ATTRIBUTES = (
    "q_proj", "k_proj", "v_proj", "out_proj", "scaling", "attn_dropout", "c_attn",
)  # fmt: skip
GENERATOR_ATTRIBUTES = (
    "search", "tokenizer", "eos", "beam_size", "vocab_size", "constraint_trie",
    "constraint_start", "lm_model", "gen_code", "gen_box", "match_source_len", "temperature",
)  # fmt: skip
ENTAILMENT_ATTRIBUTES = (
    "val_ans_l", "val_masks_l", "index2ans", "eos_item", "tokenizer", "model",
)  # fmt: skip


class OfaSpeedupUnsupported(RuntimeError):
    """The installed ModelScope or the model lacks the structure this package relies on."""


def one_line(error: BaseException) -> str:
    """``Type: first line of the message``, short enough for a notice."""
    lines = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    return text[:200]


@contextlib.contextmanager
def unsupported_on_error(doing: str) -> Iterator[None]:
    """Turn any exception raised in the block into ``OfaSpeedupUnsupported``."""
    try:
        yield
    except OfaSpeedupUnsupported:
        raise
    except Exception as error:  # noqa: BLE001  (an unknown ModelScope can raise anything)
        raise OfaSpeedupUnsupported(f"{doing} failed ({one_line(error)})") from error


def check_version() -> None:
    """Refuse a ModelScope version this package was not checked on."""
    import modelscope

    version = getattr(modelscope, "__version__", "?")
    if version not in CHECKED_MODELSCOPE_VERSIONS:
        raise OfaSpeedupUnsupported(
            f"modelscope {version} is not a version indexer.ofa_speed was checked on "
            f"({', '.join(CHECKED_MODELSCOPE_VERSIONS)})"
        )


def need(condition: object, what: str) -> None:
    """Raise ``OfaSpeedupUnsupported`` unless ``condition`` holds."""
    if not condition:
        raise OfaSpeedupUnsupported(f"not a supported OFA pipeline: {what}")


def need_attributes(owner: Any, names: tuple[str, ...], what: str) -> None:
    """Every one of ``names`` is an attribute of ``owner``."""
    missing = [name for name in names if not hasattr(owner, name)]
    need(not missing, f"{what} has no {', '.join(missing)}")


def caption_parts(pipeline: Any) -> tuple[Any, Any, Any]:
    """(task model, SequenceGenerator, OFAModel) of an image-captioning pipeline, checked."""
    check_version()
    from modelscope.models.multi_modal.ofa import OFAModel
    from modelscope.models.multi_modal.ofa.generate import search as ofa_search
    from modelscope.models.multi_modal.ofa.generate import sequence_generator as sg
    from modelscope.utils.constant import Tasks

    task_model = getattr(pipeline, "model", None)
    generator = getattr(task_model, "generator", None)
    ofa = getattr(task_model, "model", None)
    need(type(generator) is sg.SequenceGenerator, "model.generator is not a SequenceGenerator")
    need_attributes(generator, GENERATOR_ATTRIBUTES, "the generator")
    need(type(generator.search) is ofa_search.BeamSearch, "generator.search is not BeamSearch")
    need(callable(getattr(generator, "_generate", None)), "no SequenceGenerator._generate")
    need(hasattr(sg, "EnsembleModel") and hasattr(sg, "_expand_mask"), "sequence_generator")
    need(isinstance(ofa, OFAModel), "model.model is not an OFAModel")
    task = getattr(getattr(task_model, "cfg", None), "task", None)
    need(task == Tasks.image_captioning, f"task is {task!r}, not image captioning")
    need(not ofa.training, "model is in training mode")
    need(getattr(task_model, "gen_type", "generation") == "generation", "gen_type != generation")
    need(generator.constraint_trie is None, "constraint trie")
    need(generator.constraint_start is None, "constraint range")
    need(generator.lm_model is None, "language-model fusion")
    need(not (generator.gen_code or generator.gen_box), "code / box generation")
    need(not generator.match_source_len and generator.temperature > 0, "generator options")
    need(not ofa.config.use_ofasys, "use_ofasys")
    need_attributes(ofa, ("encoder", "decoder", "padding_idx", "get_normalized_probs"), "OFA")
    need_attributes(ofa.encoder, ("reorder_encoder_out", "embed_images"), "the encoder")
    _check_decoder(ofa.decoder)
    return task_model, generator, ofa


def _check_decoder(decoder: Any) -> None:
    from modelscope.models.multi_modal.ofa.modeling_ofa import OFAAttention, OFADecoderLayer

    need_attributes(decoder, DECODER_ATTRIBUTES, "the decoder")
    need(getattr(decoder, "adaptive_softmax", None) is None, "adaptive softmax")
    need(decoder.output_projection is not None, "no output projection")
    need(len(decoder.layers) > 0, "no decoder layers")
    for layer in decoder.layers:
        need(type(layer) is OFADecoderLayer, "unknown decoder layer type")
        need_attributes(layer, LAYER_ATTRIBUTES, "a decoder layer")
        for attention in (layer.self_attn, layer.cross_attn):
            need(type(attention) is OFAAttention, "unknown attention type")
            need_attributes(attention, ATTENTION_ATTRIBUTES, "an attention module")


def entailment_parts(pipeline: Any) -> Any:
    """The task model (OfaForAllTasks) of a visual-entailment pipeline, checked for what
    ``entailment.EntailmentScorer`` reads: the fields ``_traverse_inference`` uses."""
    check_version()
    from modelscope.models.multi_modal.ofa import OFAModel
    from modelscope.models.multi_modal.ofa.utils import utils as ofa_utils
    from modelscope.models.multi_modal.ofa_for_all_tasks import OfaForAllTasks
    from modelscope.preprocessors.ofa.utils import collate
    from modelscope.utils.constant import Tasks

    task_model = getattr(pipeline, "model", None)
    need(isinstance(task_model, OfaForAllTasks), "pipeline.model is not OfaForAllTasks")
    task = getattr(getattr(task_model, "cfg", None), "task", None)
    need(task == Tasks.visual_entailment, f"task is {task!r}, not visual entailment")
    need(getattr(task_model, "gen_type", None) == "traverse", "gen_type != traverse")
    need(callable(getattr(task_model, "_traverse_inference", None)), "no _traverse_inference")
    need_attributes(task_model, ENTAILMENT_ATTRIBUTES, "the task model")
    need(len(task_model.val_ans_l) == len(task_model.val_masks_l), "answers without masks")
    need(hasattr(task_model.tokenizer, "pad_token_id"), "tokenizer has no pad_token_id")
    ofa = task_model.model
    need(isinstance(ofa, OFAModel), "model.model is not an OFAModel")
    need_attributes(ofa, ("encoder", "decoder", "get_normalized_probs", "device"), "OFA")
    preprocess = getattr(getattr(pipeline, "preprocessor", None), "preprocess", None)
    need(callable(preprocess), "pipeline.preprocessor.preprocess is not callable")
    need(callable(getattr(collate, "collate_tokens", None)), "no collate_tokens")
    need(callable(getattr(ofa_utils, "expand_mask", None)), "no expand_mask")
    return task_model
