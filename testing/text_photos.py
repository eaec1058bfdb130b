"""Photos with text rendered in them (signs, labels, Chinese shop names) and without, for
testing the text pass with the real OCR model. Deterministic: fixed seeds and fonts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT_DIRS = ("/usr/share/fonts/truetype",)
LATIN_FONTS = ("dejavu/DejaVuSans-Bold.ttf", "dejavu/DejaVuSerif.ttf",
               "liberation/LiberationSans-Regular.ttf", "dejavu/DejaVuSansMono.ttf")  # fmt: skip
CJK_FONT = "wqy/wqy-zenhei.ttc"  # Debian's fonts-wqy-zenhei (scripts/setup.sh installs it)


@dataclass(frozen=True)
class TextPhoto:
    """A photo to write: its file name, the lines drawn in it, a word (or, for Chinese, a
    two-character piece) that search must find it by, and how it is drawn."""

    name: str
    lines: tuple[str, ...]
    probe: str
    font: str = LATIN_FONTS[0]
    size: int = 72
    rotate: int = 0  # degrees, counter-clockwise
    seed: int = 0


TEXT_PHOTOS = (
    TextPhoto("shop.jpg", ("OPEN 24 HOURS",), "hours", LATIN_FONTS[0], 90, seed=1),
    TextPhoto("hotel.jpg", ("Grand Hotel", "Budapest"), "budapest", LATIN_FONTS[1], 70, seed=2),
    TextPhoto("label.jpg", ("Organic Honey", "net wt 500g"), "honey", LATIN_FONTS[2], 48, seed=3),
    TextPhoto("street.jpg", ("Baker Street",), "baker", LATIN_FONTS[3], 64, rotate=90, seed=4),
    TextPhoto("flipped.jpg", ("PHARMACY",), "pharmacy", LATIN_FONTS[0], 80, rotate=180, seed=5),
    TextPhoto("cafe.jpg", ("欢迎光临咖啡店",), "咖啡", CJK_FONT, 80, seed=6),
    TextPhoto("station.jpg", ("北京火车站", "出口"), "火车", CJK_FONT, 72, seed=7),
)


def font_path(name: str) -> Path:
    """The installed font file `name` (relative to a system font folder)."""
    for folder in FONT_DIRS:
        path = Path(folder) / name
        if path.exists():
            return path
    raise FileNotFoundError(f"font {name} is not installed (see scripts/setup.sh)")


def busy_background(width: int, height: int, seed: int) -> Image.Image:
    """Blotches of colour with fine noise: a photo-like background, not a blank card."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(40, 215, (height // 40 + 1, width // 40 + 1, 3), dtype=np.uint8)
    image = Image.fromarray(coarse).resize((width, height), Image.BICUBIC)
    noise = rng.integers(-18, 18, (height, width, 3))
    return Image.fromarray(np.clip(np.asarray(image, np.int16) + noise, 0, 255).astype(np.uint8))


def render(photo: TextPhoto, width: int = 1280, height: int = 960) -> Image.Image:
    """The photo: a busy background with the lines on a pale sign, rotated as asked."""
    image = busy_background(width, height, photo.seed)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(font_path(photo.font)), photo.size)
    boxes = [draw.textbbox((0, 0), line, font=font) for line in photo.lines]
    line_height = max(box[3] for box in boxes) + photo.size // 3
    sign_w = max(box[2] for box in boxes) + photo.size
    sign_h = line_height * len(photo.lines) + photo.size // 2
    left, top = (width - sign_w) // 2, (height - sign_h) // 2
    draw.rectangle((left, top, left + sign_w, top + sign_h), fill=(238, 232, 220))
    for i, line in enumerate(photo.lines):
        draw.text((left + photo.size // 2, top + photo.size // 4 + i * line_height), line,
                  font=font, fill=(25, 25, 30))  # fmt: skip
    return image.rotate(photo.rotate, expand=True) if photo.rotate else image


def plain_photo(seed: int, width: int = 1024, height: int = 768) -> Image.Image:
    """A photo without any text: soft shapes on a gradient."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    base = np.stack([x * 200 + 30, y * 180 + 40, (1 - x) * 150 + 50], axis=-1)
    image = Image.fromarray(base.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(5):
        cx, cy, r = rng.integers(100, width - 100), rng.integers(100, height - 100), 60
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    return image


def write_text_photos(folder: Path, plain: int = 3) -> dict[str, TextPhoto]:
    """Write TEXT_PHOTOS and `plain` photos without text into `folder` as JPEG; returns
    {path: TextPhoto} of the text ones."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for photo in TEXT_PHOTOS:
        path = folder / photo.name
        render(photo).save(path, quality=92)
        written[str(path)] = photo
    for i in range(plain):
        plain_photo(100 + i).save(folder / f"plain_{i}.jpg", quality=92)
    return written


def receipt(lines: int = 10_000, width: int = 600) -> Image.Image:
    """A very long receipt: `lines` lines of small print on one tall strip."""
    line_height = 14
    image = Image.new("L", (width, lines * line_height + 20), 250)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(font_path(LATIN_FONTS[3])), 11)
    for i in range(lines):
        draw.text((10, 10 + i * line_height), f"ITEM {i:05d} COFFEE BEANS 1 x 4.99", font=font)
    return image.convert("RGB")
