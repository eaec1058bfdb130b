"""Generated test photos, ordinary and hostile."""

from __future__ import annotations

import io
import os
import random
import struct
import zlib
from pathlib import Path

from PIL import Image, ImageDraw

COLOURS = {"red": (220, 30, 30), "green": (30, 180, 40), "blue": (30, 60, 220),
           "yellow": (240, 220, 30)}  # fmt: skip


def scene(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A distinct picture per seed: a background and a few shapes."""
    rng = random.Random(seed)
    image = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(4):
        x, y = rng.randrange(size[0] // 2), rng.randrange(size[1] // 2)
        box = (x, y, x + rng.randrange(4, size[0] // 2), y + rng.randrange(4, size[1] // 2))
        fill = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=fill)
    return image


def write_photos(folder: Path, count: int, start: int = 0) -> list[Path]:
    """`count` distinct JPEGs named photo_<n>.jpg."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(start, start + count):
        path = folder / f"photo_{n:03d}.jpg"
        scene(n).save(path, quality=85)
        paths.append(path)
    return paths


def png_with_header(width: int, height: int) -> bytes:
    """A PNG that claims `width` x `height` pixels but carries almost no data (a bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))  # fmt: skip


def jpeg_bytes(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", **options)
    return buffer.getvalue()


def write_hostile_files(folder: Path) -> dict[str, Path]:
    """Files that must each become one failed row: name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    good = jpeg_bytes(scene(99))
    files = {
        "zero_byte": (folder / "zero.jpg", b""),
        "truncated": (folder / "truncated.jpg", good[: len(good) // 2]),
        "random_bytes": (folder / "random.jpg", random.Random(7).randbytes(5000)),
        "bomb": (folder / "bomb.png", png_with_header(30000, 30000)),
        "bomb_warning": (folder / "bomb_warning.png", png_with_header(10000, 10000)),
        "text_as_image": (folder / "notes.png", b"this is a text file, not a picture\n" * 20),
    }
    paths = {}
    for name, (path, data) in files.items():
        path.write_bytes(data)
        paths[name] = path
    os.symlink(folder / "does-not-exist.jpg", folder / "broken_link.jpg")
    os.symlink("self_loop.jpg", folder / "self_loop.jpg")
    paths["broken_symlink"] = folder / "broken_link.jpg"
    paths["symlink_loop"] = folder / "self_loop.jpg"
    os.symlink(folder, folder / "loop_dir")  # a folder that links to itself: walked once
    return paths


def write_odd_but_valid(folder: Path) -> dict[str, Path]:
    """Valid images in awkward modes and formats: name -> path. All must be indexed."""
    folder.mkdir(parents=True, exist_ok=True)
    base = scene(5, (320, 240))
    paths = {}

    def save(name: str, filename: str, image: Image.Image, **options) -> None:
        paths[name] = folder / filename
        image.save(paths[name], **options)

    save("cmyk", "cmyk.jpg", base.convert("CMYK"))
    save("grey16", "grey16.png", Image.new("I;16", (64, 48), 40000))
    save("palette_alpha", "palette.gif", base.convert("P"), transparency=0)
    save("rgba", "alpha.png", base.convert("RGBA"))
    frames = [scene(n, (64, 48)) for n in range(3)]
    save("animated_gif", "animated.gif", frames[0], save_all=True, append_images=frames[1:])
    save("animated_webp", "animated.webp", frames[0], save_all=True, append_images=frames[1:])
    save("bmp", "plain.bmp", base)
    save("tiff", "plain.tiff", base)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees when shown
    save("rotated", "rotated.jpg", Image.new("RGB", (600, 400), (10, 200, 10)), exif=exif)
    non_utf8 = os.path.join(os.fsencode(folder), b"caf\xe9.jpg")
    with open(non_utf8, "wb") as handle:
        handle.write(jpeg_bytes(scene(6, (200, 100))))
    paths["non_utf8"] = Path(os.fsdecode(non_utf8))
    return paths
