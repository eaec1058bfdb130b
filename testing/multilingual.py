"""Random-weight folders of multilingual CLIP architectures, in open_clip's own folder
format, with their Hugging Face text tower's config and tokenizer inside (nothing is fetched
at run time): the layout of open_clip's `xlm-roberta-base-ViT-B-32` at a tiny size."""

from __future__ import annotations

import json
from pathlib import Path

from .models import save_clip_folder

# What the tokenizer learns its pieces from: English and Chinese descriptions of shapes.
TOKENIZER_TEXTS = (
    "a red circle", "a blue square", "a green triangle", "a yellow star", "a photo of",
    "红色的圆形", "蓝色的正方形", "绿色的三角形", "黄色的星形", "一张照片",
)  # fmt: skip
XLM_ROBERTA_TEXT_CFG = {"hf_model_name": "xlm-roberta-base",
                        "hf_tokenizer_name": "xlm-roberta-base",
                        "hf_proj_type": "mlp", "hf_pooler_type": "mean_pooler"}  # fmt: skip


def save_xlm_roberta_tokenizer(folder: Path, vocab_size: int = 400):
    """A sentencepiece-style (Unigram, Metaspace) tokenizer with XLM-R's special tokens,
    trained on TOKENIZER_TEXTS and saved in `folder`; returns it."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import XLMRobertaTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials,
                                      unk_token="<unk>")  # fmt: skip
    tokenizer.train_from_iterator(list(TOKENIZER_TEXTS) * 20, trainer)
    fast = XLMRobertaTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
                                   cls_token="<s>", sep_token="</s>")  # fmt: skip
    fast.save_pretrained(str(folder))
    return fast


def make_multilingual_clip_folder(dest: str | Path, seed: int = 0) -> str:
    """Write a tiny XLM-R + ViT open_clip folder (random weights, the tokenizer and the text
    tower's config.json beside them); return "local-dir:/abs/path"."""
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
    model_cfg = {"embed_dim": 32,
                 "vision_cfg": {"image_size": 64, "layers": 1, "width": 64, "patch_size": 16},
                 "text_cfg": {**XLM_ROBERTA_TEXT_CFG, "context_length": 32}}  # fmt: skip
    building = json.loads(json.dumps(model_cfg))
    building["text_cfg"].update(hf_model_name=str(folder), hf_model_pretrained=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = open_clip.CustomTextCLIP(**building)  # what open_clip builds for HF towers
    config_json = (folder / "config.json").read_text()
    spec = save_clip_folder(folder, model_cfg, model.state_dict())
    (folder / "config.json").write_text(config_json)
    return spec
