"""Multilingual CLIP folders in open_clip's own folder format, with their Hugging Face text
tower's config and tokenizer inside (nothing is fetched at run time): the layout of
open_clip's `xlm-roberta-base-ViT-B-32` at a tiny size, with random weights, or trained on
the shapes world in English and Chinese ("a red circle" / "红色的圆形")."""

from __future__ import annotations

import json
from pathlib import Path

from .models import save_clip_folder
from .shapes import COLOURS, LABELS, SHAPES, WORLD, fit_to_shapes, text_of

CHINESE = WORLD["chinese"]


def chinese_text_of(colour: str, shape: str) -> str:
    """The world's description in Chinese: 红色的圆形 for a red circle."""
    return f"{CHINESE[colour]}的{CHINESE[shape]}"


# What the tokenizer learns its pieces from: English and Chinese descriptions of shapes.
TOKENIZER_TEXTS = (
    *(text_of(*label) for label in LABELS), *(chinese_text_of(*label) for label in LABELS),
    "a yellow star", "a photo of", "黄色的星形", "一张照片",
)  # fmt: skip
CONTEXT = 32
TINY_VISION = {"image_size": 64, "layers": 1, "width": 64, "patch_size": 16}
TRAINED_VISION = {"image_size": 64, "layers": 2, "width": 64, "head_width": 16, "patch_size": 8}
XLM_ROBERTA_TEXT_CFG = {"hf_model_name": "xlm-roberta-base",
                        "hf_tokenizer_name": "xlm-roberta-base",
                        "hf_proj_type": "mlp", "hf_pooler_type": "mean_pooler"}  # fmt: skip


def _unigram(specials: list[str], vocab_size: int = 400):
    """A sentencepiece-style (Unigram, Metaspace) tokenizer trained on TOKENIZER_TEXTS."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials,
                                      unk_token="<unk>")  # fmt: skip
    tokenizer.train_from_iterator(list(TOKENIZER_TEXTS) * 20, trainer)
    return tokenizer


def save_xlm_roberta_tokenizer(folder: Path):
    """An XLM-R tokenizer (XLM-R's special tokens) saved in `folder`; returns it."""
    from transformers import XLMRobertaTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    roles = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
             "mask_token": "<mask>", "cls_token": "<s>", "sep_token": "</s>"}  # fmt: skip
    fast = XLMRobertaTokenizerFast(tokenizer_object=_unigram(specials), **roles)
    fast.save_pretrained(str(folder))
    return fast


def make_multilingual_clip_folder(
    dest: str | Path, seed: int = 0, vision_cfg: dict | None = None, train=None
) -> str:
    """Write a tiny XLM-R + ViT open_clip folder (random weights, the tokenizer and the text
    tower's config.json beside them); return "local-dir:/abs/path". `train(model, folder)`,
    when given, trains the model (the tokenizer is in `folder` by then) before it is saved."""
    import open_clip
    import torch
    from transformers import XLMRobertaConfig

    folder = Path(dest).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = save_xlm_roberta_tokenizer(folder)
    XLMRobertaConfig(
        vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=128, max_position_embeddings=80, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    ).save_pretrained(str(folder))  # fmt: skip
    model_cfg = {"embed_dim": 32, "vision_cfg": vision_cfg or TINY_VISION,
                 "text_cfg": {**XLM_ROBERTA_TEXT_CFG, "context_length": CONTEXT}}  # fmt: skip
    building = json.loads(json.dumps(model_cfg))
    building["text_cfg"].update(hf_model_name=str(folder), hf_model_pretrained=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = open_clip.CustomTextCLIP(**building)  # what open_clip builds for HF towers
        if train is not None:
            train(model, folder)
    config_json = (folder / "config.json").read_text()
    spec = save_clip_folder(folder, model_cfg, model.state_dict())
    (folder / "config.json").write_text(config_json)
    return spec


def train_bilingual_clip(dest: str | Path, steps: int = 250, seed: int = 0) -> str:
    """The tiny XLM-R + ViT CLIP trained on the shapes world (about a minute on 2 cores, 250 steps):
    each picture is classified against the descriptions of all colour/shape pairs, in
    English and in Chinese, and against "a photo of {colour}" / "a photo of a {shape}" (what
    `indexer tag` asks). Returns its `local-dir:` spec."""

    def train(model, folder: Path) -> None:
        _train_on_shapes(model, folder, steps, seed)

    return make_multilingual_clip_folder(dest, seed, vision_cfg=TRAINED_VISION, train=train)


def _train_on_shapes(model, folder: Path, steps: int, seed: int) -> None:
    import open_clip

    tokenizer = open_clip.tokenizer.HFTokenizer(str(folder), context_length=CONTEXT)
    preprocess = open_clip.image_transform(TRAINED_VISION["image_size"], is_train=False)
    heads = [(tokenizer([text_of(*label) for label in LABELS]), list(LABELS), None),
             (tokenizer([chinese_text_of(*label) for label in LABELS]), list(LABELS), None),
             (tokenizer([f"a photo of {c}" for c in COLOURS]), list(COLOURS), 0),
             (tokenizer([f"a photo of a {s}" for s in SHAPES]), list(SHAPES), 1)]  # fmt: skip
    fit_to_shapes(model, heads, preprocess, steps, seed)
    model.eval()


def bilingual_clip(cache_dir: str | Path) -> str:
    """The bilingual CLIP trained once into `cache_dir`/bilingual-clip, reused afterwards."""
    folder = Path(cache_dir) / "bilingual-clip"
    if (folder / "open_clip_model.safetensors").is_file():
        return f"local-dir:{folder.resolve()}"
    return train_bilingual_clip(folder)


def make_nllb_clip_folder(dest: str | Path, seed: int = 0) -> str:
    """A tiny folder of open_clip's `nllb-clip-base-siglip` layout (random weights): the
    encoder of an NLLB (M2M100) text tower with its NLLB tokenizer (which starts every text
    with a language code, eng_Latn by default) and a ViT; returns its `local-dir:` spec."""
    import open_clip
    import torch
    from transformers import M2M100Config, NllbTokenizerFast

    folder = Path(dest).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = NllbTokenizerFast(tokenizer_object=_unigram(["<s>", "<pad>", "</s>", "<unk>"]),
                                  src_lang="eng_Latn")  # fmt: skip
    tokenizer.save_pretrained(str(folder))
    M2M100Config(
        vocab_size=len(tokenizer), d_model=64, encoder_layers=2, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=128,
        decoder_ffn_dim=128, max_position_embeddings=80, scale_embedding=True,
        pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2,
    ).save_pretrained(str(folder))  # fmt: skip
    text_cfg = {"hf_model_name": "facebook/nllb-200-distilled-600M",
                "hf_tokenizer_name": "facebook/nllb-200-distilled-600M",
                "hf_proj_type": "linear", "hf_pooler_type": "cls_pooler",
                "context_length": CONTEXT}  # fmt: skip
    model_cfg = {"embed_dim": 32, "custom_text": True, "init_logit_bias": -10,
                 "vision_cfg": TINY_VISION, "text_cfg": text_cfg}  # fmt: skip
    building = json.loads(json.dumps(model_cfg))
    building["text_cfg"].update(hf_model_name=str(folder), hf_model_pretrained=False)
    building.pop("custom_text")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = open_clip.CustomTextCLIP(**building)
    config_json = (folder / "config.json").read_text()
    spec = save_clip_folder(folder, model_cfg, model.state_dict())
    (folder / "config.json").write_text(config_json)
    return spec


def make_siglip_i18n_folder(dest: str | Path, seed: int = 0) -> str:
    """A tiny folder of open_clip's `ViT-B-16-SigLIP-i18n-256` layout (random weights):
    open_clip's own bidirectional text transformer, pooled at the last token, over a
    multilingual sentencepiece vocabulary whose tokenizer (T5-style, as the real model's
    mC4 one) is in the folder, and a ViT; returns its `local-dir:` spec."""
    import open_clip
    import torch
    from transformers import T5TokenizerFast

    folder = Path(dest).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = T5TokenizerFast(tokenizer_object=_unigram(["<pad>", "</s>", "<unk>"]),
                                extra_ids=0)  # fmt: skip
    tokenizer.save_pretrained(str(folder))
    text_cfg = {"context_length": 64, "vocab_size": len(tokenizer),
                "hf_tokenizer_name": "timm/ViT-B-16-SigLIP-i18n-256",
                "tokenizer_kwargs": {"clean": "canonicalize"}, "width": 64, "heads": 2,
                "layers": 2, "no_causal_mask": True, "proj_bias": True, "pool_type": "last",
                "norm_kwargs": {"eps": 1e-6}}  # fmt: skip
    model_cfg = {"embed_dim": 32, "custom_text": True, "init_logit_bias": -10,
                 "vision_cfg": TINY_VISION, "text_cfg": text_cfg}  # fmt: skip
    building = {key: value for key, value in model_cfg.items() if key != "custom_text"}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = open_clip.CustomTextCLIP(**json.loads(json.dumps(building)))
    return save_clip_folder(folder, model_cfg, model.state_dict())
