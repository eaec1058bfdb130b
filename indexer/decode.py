"""Decode an image file safely into an RGB picture small enough for the models.

Safe means: Pillow's decompression-bomb limit is kept and its warning is an error,
truncated files are errors (never silently padded), EXIF orientation is applied, and any
mode (CMYK, 16-bit, palette, alpha, animation) becomes plain RGB. JPEGs are decoded in
draft mode, so a 12-megapixel photo is decoded at a fraction of its size when the models
only need a few hundred pixels.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from functools import cache

from PIL import Image, ImageFile, ImageOps

# EXIF orientations 5-8 rotate by 90 degrees, swapping width and height.
_SWAPPING_ORIENTATIONS = {5, 6, 7, 8}
_EXIF_ORIENTATION = 0x0112
_EXIF_IFD, _EXIF_DATE_ORIGINAL, _EXIF_DATE_DIGITIZED, _EXIF_DATE = 0x8769, 0x9003, 0x9004, 0x0132
DEFAULT_MIN_SIDE = 480
# Pillow's own default limit. Set again on every call because importing ModelScope's OFA
# preprocessors turns both safety checks off process-wide.
PIXEL_LIMIT = 89_478_485


class DecodeError(Exception):
    """The file is not an image Pillow can decode safely; the message says why."""


@dataclass
class DecodedImage:
    """An RGB picture, and the size of the original as a viewer shows it."""

    image: Image.Image
    width: int
    height: int
    taken_at: str | None = None  # EXIF date taken, ISO 8601 local time, when the file has one
    clip_image: Image.Image | None = None  # the CLIP model's square input, when asked for
    model_input: bytes | None = None  # the reranker's input as PNG (model_inputs), when asked
    text_lines: list | None = None  # the text read in it (indexer.ocr.TextLine), when asked
    text_error: str | None = None  # why its text could not be read


def clip_crop(image: Image.Image, size: int) -> Image.Image:
    """What open_clip's usual preprocessing (torchvision Resize(size) of the shorter side,
    bicubic, then CenterCrop(size)) makes of a PIL image, done with Pillow alone, so decode
    workers can do it without importing torch. open_clip then finds the picture already at
    its size and leaves it as it is: the model sees the same pixels either way."""
    width, height = image.size
    if width <= height:
        new = (size, int(size * height / width))
    else:
        new = (int(size * width / height), size)
    resized = image.resize(new, Image.BICUBIC) if new != image.size else image
    left = int(round((new[0] - size) / 2.0))
    top = int(round((new[1] - size) / 2.0))
    return resized.crop((left, top, left + size, top + size))


@cache
def register_extra_formats() -> tuple[str, ...]:
    """Register HEIC and AVIF openers where the plugins are installed; return what was added."""
    added = []
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
        added.append("heif")
    except ImportError:
        pass
    if ".avif" not in Image.registered_extensions():
        try:
            import pillow_avif  # noqa: F401  (registers itself)

            added.append("avif")
        except ImportError:
            pass
    return tuple(added)


def new_content_hasher():
    """A hasher for the content key of a file: BLAKE2b-128 of its bytes (hexdigest)."""
    return hashlib.blake2b(digest_size=16)


def content_hash(data: bytes) -> str:
    """The content key of bytes, as hex (see `new_content_hasher`)."""
    hasher = new_content_hasher()
    hasher.update(data)
    return hasher.hexdigest()


def perceptual_hash(image: Image.Image) -> str:
    """A 64-bit DCT perceptual hash (imagehash.phash) as 16 hex digits: near-identical
    pictures (resized, recompressed) differ in a few bits."""
    import imagehash

    return str(imagehash.phash(image))


def decode_image(source: str | bytes, min_side: int = DEFAULT_MIN_SIDE) -> DecodedImage:
    """Decode a path or the bytes of a file into RGB, at least `min_side` pixels on its short side
    where the original is that big. Raises DecodeError with a one-line reason.
    """
    register_extra_formats()
    Image.MAX_IMAGE_PIXELS = PIXEL_LIMIT
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(stream) as opened:
                return _to_rgb(opened, min_side)
    except Image.DecompressionBombError as error:
        raise DecodeError(f"decompression bomb refused: {error}") from None
    except Image.DecompressionBombWarning as error:
        raise DecodeError(f"decompression bomb refused: {error}") from None
    except Image.UnidentifiedImageError:
        raise DecodeError("not an image Pillow recognises") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError) as error:
        raise DecodeError(_one_line(error)) from None
    except MemoryError:
        raise DecodeError("out of memory while decoding") from None


def _one_line(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    text = text or type(error).__name__
    if "truncated" in text.lower() or "end of file" in text.lower():
        return f"truncated or damaged image: {text}"
    return f"cannot decode: {text}"


def _to_rgb(opened: Image.Image, min_side: int) -> DecodedImage:
    width, height = opened.size
    exif = opened.getexif()
    orientation = exif.get(_EXIF_ORIENTATION, 1)
    if orientation in _SWAPPING_ORIENTATIONS:
        width, height = height, width
    if opened.format == "JPEG":
        opened.draft("RGB", (min_side, min_side))
    opened.load()
    image = _reduce(opened, min_side)
    image = ImageOps.exif_transpose(image)
    return DecodedImage(_flatten(image), width, height, exif_date_taken(exif))


def exif_date_taken(exif: Image.Exif) -> str | None:
    """The EXIF date taken ("2021:07:04 18:30:00") as ISO 8601, or None when absent or bad."""
    from datetime import datetime

    details = exif.get_ifd(_EXIF_IFD)
    candidates = (details.get(_EXIF_DATE_ORIGINAL), details.get(_EXIF_DATE_DIGITIZED),
                  exif.get(_EXIF_DATE))  # fmt: skip
    for value in candidates:
        try:
            text = str(value).strip().rstrip("\x00")
            return datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S").isoformat()
        except (TypeError, ValueError):
            continue
    return None


def _reduce(image: Image.Image, min_side: int) -> Image.Image:
    factor = min(image.size) // max(min_side, 1)
    if factor >= 2 and image.mode in ("RGB", "RGBA", "L", "LA", "CMYK", "I", "F"):
        return image.reduce(factor)
    return image


def _flatten(image: Image.Image) -> Image.Image:
    """Any mode to RGB; transparency is laid on white, as a viewer would show it."""
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I") or image.mode == "F":
        image = _high_depth_to_l(image)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _high_depth_to_l(image: Image.Image) -> Image.Image:
    """16- and 32-bit greyscale to 8 bits by scaling its range, not by clipping it."""
    import numpy as np

    values = np.asarray(image, dtype=np.float64)
    top = 65535.0 if image.mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
    if image.mode == "F":
        low, high = float(values.min(initial=0)), float(values.max(initial=1))
        values, top = values - low, (high - low) or 1.0
    scaled = np.clip(values * (255.0 / top), 0, 255).astype(np.uint8)
    return Image.fromarray(scaled)
