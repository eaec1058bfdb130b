"""What each CLIP model a user may pick for non-English search costs on this machine.

Random weights at the real architectures' sizes (no download): parameters, resident memory
added by loading (each model in a fresh process), ms to embed one query, ms per image.

python bench/multilingual_cost.py                          # all four, real size (minutes)
python bench/multilingual_cost.py --models ViT-B-32,nllb-clip-base-siglip --repeats 3
python bench/multilingual_cost.py --tiny --json /tmp/m.json   # tiny configs: checks it runs
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODELS = ["ViT-B-32", "xlm-roberta-base-ViT-B-32"]  # the English default; XLM-R text
MODELS += ["nllb-clip-base-siglip", "ViT-B-16-SigLIP-i18n-256"]
# the real Hugging Face text towers (xlm-roberta-base; the encoder of nllb-200-distilled-600M)
HF_TEXT = {
    "xlm-roberta-base-ViT-B-32": ("XLMRobertaConfig", dict(
        vocab_size=250002, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
        intermediate_size=3072, max_position_embeddings=514, type_vocab_size=1,
        layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2)),
    "nllb-clip-base-siglip": ("M2M100Config", dict(
        vocab_size=256206, d_model=1024, encoder_layers=12, decoder_layers=12,
        encoder_attention_heads=16, decoder_attention_heads=16, encoder_ffn_dim=4096,
        decoder_ffn_dim=4096, max_position_embeddings=1024, scale_embedding=True,
        pad_token_id=1, bos_token_id=0, eos_token_id=2)),
}  # fmt: skip
TINY_HF = {
    "XLMRobertaConfig": dict(vocab_size=1000, hidden_size=32, num_hidden_layers=1,
                             num_attention_heads=2, intermediate_size=64,
                             max_position_embeddings=80),
    "M2M100Config": dict(vocab_size=1000, d_model=32, encoder_layers=1, decoder_layers=1,
                         encoder_attention_heads=2, decoder_attention_heads=2,
                         encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=80),
}  # fmt: skip
TINY_TEXT = dict(vocab_size=1000, width=32, heads=2, layers=1)
TINY_VISION = dict(image_size=32, width=32, layers=1, patch_size=16, head_width=16)
TINY_TIMM = "bench_tiny_vit_siglip"
# how each tokenizer frames a query: (start id or None, end id, pad id); negative = vocab + id
SPECIAL_IDS = {
    "ViT-B-32": (-2, -1, 0),  # SimpleTokenizer: <start_of_text>, <end_of_text> (argmax-pooled)
    "xlm-roberta-base-ViT-B-32": (0, 2, 1),  # <s> ... </s> <pad>
    "nllb-clip-base-siglip": (None, 2, 1),  # language code ... </s> <pad>
    "ViT-B-16-SigLIP-i18n-256": (None, 1, 0),  # ... </s> <pad> (last-token pooled)
}  # the ids matter for pooling only: every position is computed, padding included
DEFAULT_CONTEXT_LENGTH = 77  # open_clip's get_tokenizer when text_cfg names none


def rss_mb() -> float:
    """Resident memory of this process now, in MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def register_tiny_timm() -> None:
    """A one-block SigLIP-style ViT (attention-map pooling) under TINY_TIMM, for --tiny."""
    import timm
    from timm.models import register_model

    if timm.is_model(TINY_TIMM):
        return

    def bench_tiny_vit_siglip(pretrained=False, **kwargs):
        dims = dict(img_size=32, patch_size=16, embed_dim=32, depth=1, num_heads=2)
        return timm.create_model("vit_base_patch16_siglip_256", pretrained=False, **dims, **kwargs)

    register_model(bench_tiny_vit_siglip)


def write_hf_config(name: str, folder: Path, tiny: bool) -> None:
    """Save the Hugging Face config of `name`'s text tower (real or tiny sizes) to `folder`."""
    import transformers

    kind, values = HF_TEXT[name]
    values = {**values, **TINY_HF[kind]} if tiny else values
    getattr(transformers, kind)(**values).save_pretrained(folder)


def model_overrides(name: str, folder: Path, tiny: bool) -> dict:
    """open_clip config overrides (passed as create_model kwargs): HF tower folder, tiny sizes."""
    import open_clip

    cfg = open_clip.get_model_config(name)
    text, vision = dict(cfg["text_cfg"]), dict(cfg["vision_cfg"])
    if name in HF_TEXT:
        write_hf_config(name, folder, tiny)
        text.update(hf_model_name=str(folder), hf_model_pretrained=False)
    elif tiny:
        text.update(TINY_TEXT)
    if tiny and "timm_model_name" in vision:
        register_tiny_timm()
        vision.update(timm_model_name=TINY_TIMM, image_size=32)
    elif tiny:
        vision.update(TINY_VISION)
    return dict(text_cfg=text, vision_cfg=vision, **(dict(embed_dim=16) if tiny else {}))


def query_ids(name: str, context_length: int, vocab: int, tokens: int):
    """A (1, context_length) batch of random ids framed and padded as `name`'s tokenizer would."""
    import torch

    start, end, pad = (None if i is None else i % vocab for i in SPECIAL_IDS[name])
    ids = torch.full((1, context_length), pad, dtype=torch.long)
    ids[0, :tokens] = torch.randint(3, min(vocab - 3, 40000), (tokens,))
    if start is not None:
        ids[0, 0] = start
    ids[0, tokens - 1] = end
    return ids


def median_ms(fn, repeats: int, warmup: int) -> float:
    """Median wall time of fn() in ms over `repeats` calls, after `warmup` unmeasured calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def count_params(model) -> tuple[int, int]:
    """(text tower, image tower) parameter counts; logit scale/bias belong to neither."""
    text = image = 0
    for key, param in model.named_parameters():
        if key.startswith("visual."):
            image += param.numel()
        elif not key.startswith("logit_"):
            text += param.numel()
    return text, image


def load(name: str, tiny: bool):
    """Build `name` with random weights; (model, text_cfg, resident MB added, peak MB added)."""
    import open_clip

    with tempfile.TemporaryDirectory() as tmp:
        overrides = model_overrides(name, Path(tmp), tiny)
        gc.collect()
        before = rss_mb()
        model = open_clip.create_model(name, pretrained=None, pretrained_text=False, **overrides)
    gc.collect()
    loaded = rss_mb()
    peak = max(loaded, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return model.eval(), overrides["text_cfg"], loaded - before, peak - before


def measure(name: str, args: argparse.Namespace) -> dict:
    """Load `name` in this process and time its two towers."""
    import torch

    torch.set_num_threads(args.threads)
    model, text_cfg, load_mb, peak_mb = load(name, args.tiny)
    size = model.visual.image_size
    size = (size, size) if isinstance(size, int) else tuple(size)
    context = text_cfg.get("context_length", DEFAULT_CONTEXT_LENGTH)
    vocab = text_cfg.get("vocab_size") or model.text.vocab_size
    ids = query_ids(name, context, vocab, args.tokens)
    images = torch.randn(args.batch, 3, *size)
    with torch.inference_mode():
        query_ms = median_ms(lambda: model.encode_text(ids), args.repeats, warmup=3)
        batch_ms = median_ms(lambda: model.encode_image(images), args.repeats, warmup=1)
        dim = model.encode_text(ids).shape[-1]
    text_params, image_params = count_params(model)
    return {
        "dim": dim, "text_params": text_params, "image_params": image_params,
        "load_rss_mb": round(load_mb, 1), "peak_rss_mb": round(peak_mb, 1),
        "query_ms": round(query_ms, 2), "image_ms": round(batch_ms / args.batch, 2),
        "context_length": context, "image_size": list(size),
    }  # fmt: skip


def run_child(name: str, args: argparse.Namespace) -> dict:
    """measure() in a fresh Python process, so no two models share memory."""
    options = ["--repeats", args.repeats, "--batch", args.batch, "--tokens", args.tokens]
    options += ["--threads", args.threads] + (["--tiny"] if args.tiny else [])
    command = [sys.executable, str(Path(__file__).resolve()), "--child", name]
    threads = str(args.threads)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the `indexer` command sets it
    env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    done = subprocess.run(
        command + [str(option) for option in options], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        return {"error": last[0]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def millions(count: int) -> str:
    """A parameter count for the table: 87.8M, or 38k for tiny configs."""
    return f"{count / 1e6:.1f}M" if count >= 1e5 else f"{count / 1e3:.0f}k"


COLUMNS = {  # heading: cell from one model's figures
    "dim": lambda r: str(r["dim"]),
    "tokens, px": lambda r: f"{r['context_length']}, {r['image_size'][0]}",
    "text params": lambda r: millions(r["text_params"]),
    "image params": lambda r: millions(r["image_params"]),
    "load RSS MB": lambda r: f"{r['load_rss_mb']:.0f}",
    "peak RSS MB": lambda r: f"{r['peak_rss_mb']:.0f}",
    "query ms": lambda r: f"{r['query_ms']:.1f}",
    "image ms": lambda r: f"{r['image_ms']:.1f}",
}


def markdown(results: dict, args: argparse.Namespace) -> str:
    """The figures as a markdown table, under one line saying how they were taken."""
    title = (
        f"torch threads {args.threads}, fp32; a query of {args.tokens} tokens (batch 1); "
        f"images at batch {args.batch}; median of {args.repeats}"
        + ("; TINY configs" if args.tiny else "")
    )
    rows = [title, "", "| model | " + " | ".join(COLUMNS) + " |"]
    rows.append("|---|" + "---:|" * len(COLUMNS))
    for name, figures in results.items():
        if "error" in figures:
            cells = [f"failed: {figures['error'][:80]}"]
        else:
            cells = [cell(figures) for cell in COLUMNS.values()]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated names")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per figure")
    parser.add_argument("--batch", type=int, default=16, help="images per encode_image call")
    parser.add_argument("--tokens", type=int, default=12, help="query length before padding")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--tiny", action="store_true", help="tiny configs (a test; about a minute)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # one model, figures as JSON
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Measure each model in its own process; print a markdown table, optionally write JSON."""
    args = parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args)))
        return 0
    names = [name.strip() for name in args.models.split(",") if name.strip()]
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        raise SystemExit(f"unknown model(s) {unknown}; choose from {MODELS}")
    results = {name: run_child(name, args) for name in names}
    print(markdown(results, args))
    if args.json:
        settings = {k: getattr(args, k) for k in ("repeats", "batch", "tokens", "threads", "tiny")}
        args.json.write_text(json.dumps({"settings": settings, "models": results}, indent=2))
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
