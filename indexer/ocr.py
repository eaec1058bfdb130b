"""Reading the text in photos (OCR): a reader interface, and RapidOCR's PP-OCRv4 behind it.

RapidOCR (`rapidocr-onnxruntime`) runs PaddleOCR's PP-OCRv4 detection, direction
classifier and recognition (Chinese and English) on onnxruntime. Version 1.4.4 is pinned:
its wheel ships the model files, so it reads offline; later releases download their models
at run time. Readers run in the decode workers (indexer.decode_pool), so a picture that
makes OCR hang or crash costs one worker and one photo's text, never the build.

Speed: detection dominates and grows with the picture's area, so the picture is read at
`detect_side` pixels on its long side (960: signs, labels and slides read as well as at full
size; small print in a 12 MP photo may be lost). Recognition stops after `max_lines` lines.
A strip (a receipt, a long screenshot: more than STRIP_RATIO times longer than wide) would
shrink to nothing at that size, so only its start is read, at a readable scale: a 10,000-line
receipt keeps its first lines. One onnxruntime thread per worker: the
workers run beside each other and beside the models of the main process.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import metadata
from typing import Protocol

from PIL import Image

RAPIDOCR_PACKAGE = "rapidocr-onnxruntime"
RAPIDOCR_VERSION = "1.4.4"  # the last release whose wheel holds its models
DETECT_SIDE = 960
MAX_LINES = 300
MIN_CONFIDENCE = 0.5
STRIP_RATIO = 3
MIN_CHARACTERS = 2  # letters or digits in a line: shapes alone read as "O", "..", "·"
DEFAULT_TEXT_READER = "indexer.ocr:RapidTextReader"  # what the decode workers build
# How a decode worker's text error starts when the reader itself could not be made: the
# photo is not to blame, so it stays unread (indexer.ocr_pass stops and says why).
READER_UNAVAILABLE = "the text reader could not load: "


@dataclass(frozen=True)
class TextLine:
    """A line of text read in a picture: its words, the recogniser's confidence (0-1) and
    its box, four (x, y) corners in the original picture's pixels."""

    text: str
    confidence: float
    box: tuple[tuple[int, int], ...]


class TextReader(Protocol):
    """Reads the text in a picture. `name` is recorded with each photo it reads: a reader
    of another name reads every photo again."""

    name: str

    def read(self, image: Image.Image, original_size: tuple[int, int]) -> list[TextLine]:
        """The lines in `image`, top to bottom, with boxes scaled to `original_size`."""
        ...


class TextReaderUnavailable(RuntimeError):
    """The OCR package is missing or not the pinned version."""


def rapidocr_name() -> str:
    """The name photos read by RapidTextReader are marked with, or raise
    TextReaderUnavailable when the pinned package is not installed."""
    try:
        version = metadata.version(RAPIDOCR_PACKAGE)
    except metadata.PackageNotFoundError:
        raise TextReaderUnavailable(
            f"{RAPIDOCR_PACKAGE} is not installed (pip install "
            f"{RAPIDOCR_PACKAGE}=={RAPIDOCR_VERSION} --no-deps)"
        ) from None
    if version != RAPIDOCR_VERSION:
        raise TextReaderUnavailable(
            f"{RAPIDOCR_PACKAGE} {version} is installed; the indexer needs "
            f"{RAPIDOCR_VERSION}, whose wheel holds its models (later ones download them)"
        )
    return f"rapidocr-{RAPIDOCR_VERSION}-ppocrv4-{DETECT_SIDE}"


class RapidTextReader:
    """PP-OCRv4 through RapidOCR (see the module docstring). Loads in about half a second."""

    model_name = staticmethod(rapidocr_name)  # the marker, known without loading the model

    def __init__(
        self, detect_side: int = DETECT_SIDE, max_lines: int = MAX_LINES, threads: int = 1
    ) -> None:
        self.name = rapidocr_name()
        from rapidocr_onnxruntime import RapidOCR

        self.detect_side = detect_side
        # limit_type "min" with a small side: detection takes the picture at the size it is
        # given (the "max" type would pick its own size, up to 2000 pixels)
        self._engine = RapidOCR(
            det_limit_type="min", det_limit_side_len=32, det_max_candidates=max_lines,
            intra_op_num_threads=threads, inter_op_num_threads=1,
        )  # fmt: skip

    def read(self, image: Image.Image, original_size: tuple[int, int]) -> list[TextLine]:
        """The lines RapidOCR reads with at least MIN_CONFIDENCE and MIN_CHARACTERS, top to
        bottom."""
        import numpy as np

        picture = start_of_strip(image.convert("RGB"), self.detect_side)
        crop_width, crop_height = picture.size
        picture.thumbnail((self.detect_side, self.detect_side), Image.BILINEAR)
        # boxes: the read picture's pixels -> the decoded image's -> the original's
        scale_x = crop_width / picture.width * original_size[0] / image.width
        scale_y = crop_height / picture.height * original_size[1] / image.height
        # RapidOCR takes OpenCV's channel order (BGR)
        found, _ = self._engine(np.ascontiguousarray(np.asarray(picture)[:, :, ::-1]))
        lines = []
        for box, text, confidence in found or []:
            text = " ".join(str(text).split())
            if _characters(text) >= MIN_CHARACTERS and float(confidence) >= MIN_CONFIDENCE:
                corners = tuple((round(x * scale_x), round(y * scale_y)) for x, y in box)
                lines.append(TextLine(text, round(float(confidence), 4), corners))
        return lines


def start_of_strip(picture: Image.Image, side: int) -> Image.Image:
    """The picture, or for a strip its first part (top or left), about as long as wide and
    at least `side` pixels long where the strip is that long."""
    width, height = picture.size
    if height > STRIP_RATIO * width:
        return picture.crop((0, 0, width, min(height, max(width, side))))
    if width > STRIP_RATIO * height:
        return picture.crop((0, 0, min(width, max(height, side)), height))
    return picture


def _characters(text: str) -> int:
    return sum(character.isalnum() for character in text)


def lines_json(lines: list[TextLine]) -> str:
    """Lines as the store keeps them: [{"text", "confidence", "box"}]."""
    return json.dumps(
        [{"text": line.text, "confidence": line.confidence, "box": line.box} for line in lines],
        ensure_ascii=False,
    )


def lines_from_json(data: str | None) -> list[TextLine]:
    """The stored lines (see lines_json) back as TextLines; [] for none."""
    if not data:
        return []
    return [
        TextLine(item["text"], item["confidence"], tuple(tuple(xy) for xy in item["box"]))
        for item in json.loads(data)
    ]


def reader_factory(spec: str):
    """The reader class (or factory) a "module:factory" spec names, not called yet.
    Raises TextReaderUnavailable when there is none."""
    import importlib

    module, _, name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as error:
        raise TextReaderUnavailable(f"no text reader {spec!r}: {error}") from None


def build_reader(spec: str) -> TextReader:
    """The reader a "module:factory" spec names, made now (in a decode worker)."""
    return reader_factory(spec)()
