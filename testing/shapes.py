"""Pictures of coloured shapes, and a tiny open_clip model trained on them in seconds.

Random weights cannot show that retrieval works; a model that has learned "a red circle"
can. The training is ordinary CLIP fine-tuning of the tiny architecture: each image is
classified against the texts of all colour/shape combinations through both towers.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from PIL import Image, ImageDraw

# the world's generator inputs, shared with `make demo`
WORLD_FILE = Path(__file__).resolve().parent.parent / "data" / "world.json"
WORLD = json.loads(WORLD_FILE.read_text(encoding="utf-8"))
COLOURS = {name: tuple(rgb) for name, rgb in WORLD["colours"].items()}
SHAPES = tuple(WORLD["shapes"])
LABELS = [(colour, shape) for colour in COLOURS for shape in SHAPES]
PICTURE_SIZE = WORLD["picture_size"]


def text_of(colour: str, shape: str) -> str:
    return f"a {colour} {shape}"


def draw_shape(
    colour: str, shape: str, rng: random.Random, size: int = PICTURE_SIZE
) -> Image.Image:
    """One shape of one colour on a pale random background, at a random place and size."""
    background = tuple(rng.randrange(190, 256) for _ in range(3))
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    extent = rng.randrange(size // 3, size * 3 // 4)
    x, y = rng.randrange(0, size - extent), rng.randrange(0, size - extent)
    fill = tuple(min(255, max(0, c + rng.randrange(-20, 21))) for c in COLOURS[colour])
    if shape == "circle":
        draw.ellipse((x, y, x + extent, y + extent), fill=fill)
    elif shape == "square":
        draw.rectangle((x, y, x + extent, y + extent), fill=fill)
    else:
        draw.polygon([(x + extent // 2, y), (x, y + extent), (x + extent, y + extent)], fill=fill)
    return image


# A small ViT (2 layers, 8-pixel patches) with open_clip's text tower and real tokenizer.
SHAPE_CLIP_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def train_shape_clip(
    folder: Path,
    steps: int = 400,
    seed: int = 0,
    names: dict[str, str] | None = None,
    prompts: bool = False,
) -> str:
    """Train a small open_clip CLIP on shapes (about 20 s on 2 cores) and save it as a
    `local-dir:` model folder; returns its spec.

    Each picture is classified against the texts of all colour/shape pairs ("a red circle")
    and, with `prompts`, also against "a photo of {colour}" for every colour (and "a photo",
    never the answer: `indexer tag`'s neutral prompt) and "a photo of a {shape}" for every
    shape (what `indexer tag` and a one-word query ask). `names` renames
    things in the CLIP's texts only (the world's CLIP calls triangles wedges)."""
    import open_clip
    import torch

    from testing.models import save_clip_folder

    def name(word: str) -> str:
        return (names or {}).get(word, word)

    torch.manual_seed(seed)
    model = open_clip.CLIP(**SHAPE_CLIP_CFG)
    preprocess = open_clip.image_transform(64, is_train=False)
    tokenizer = open_clip.get_tokenizer("ViT-B-32")  # the default SimpleTokenizer
    heads = [(tokenizer([text_of(name(c), name(s)) for c, s in LABELS]), list(LABELS), None)]
    if prompts:
        colours = [f"a photo of {name(c)}" for c in COLOURS] + ["a photo"]  # never the answer
        heads.append((tokenizer(colours), list(COLOURS), 0))
        heads.append((tokenizer([f"a photo of a {name(s)}" for s in SHAPES]), list(SHAPES), 1))
    fit_to_shapes(model, heads, preprocess, steps, seed)
    return save_clip_folder(folder, SHAPE_CLIP_CFG, model.state_dict())


def fit_to_shapes(model, heads: list, preprocess, steps: int, seed: int) -> None:
    """Train an open_clip model on drawn shapes: each step draws 48 pictures and classifies
    each against every head's texts. A head is (tokens, classes, part): the classes its
    texts name, in order, and which part of a (colour, shape) label they name (None: both,
    0: the colour, 1: the shape)."""
    import torch

    rng = random.Random(seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    model.train()
    for _ in range(steps):
        labels = [LABELS[rng.randrange(len(LABELS))] for _ in range(48)]
        images = torch.stack([preprocess(draw_shape(*label, rng)) for label in labels])
        pictures = torch.nn.functional.normalize(model.encode_image(images), dim=-1)
        loss = 0.0
        for texts, classes, part in heads:
            words = torch.nn.functional.normalize(model.encode_text(texts), dim=-1)
            logits = model.logit_scale.exp() * pictures @ words.T
            wanted = [classes.index(label if part is None else label[part]) for label in labels]
            loss = loss + torch.nn.functional.cross_entropy(logits, torch.tensor(wanted))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
