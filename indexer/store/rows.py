"""What the store hands out and takes in: file paths as the database keeps them, and the
records of one image."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np


def db_path_of(path: str) -> tuple[str, bytes | None]:
    """A file-system path as (text key, raw bytes when the name is not valid UTF-8)."""
    try:
        path.encode("utf-8")
        return path, None
    except UnicodeEncodeError:
        raw = os.fsencode(path)
        return raw.decode("utf-8", errors="backslashreplace"), raw


def fs_path_of(row: dict) -> str:
    """The file-system path of an image or failure row."""
    return os.fsdecode(row["fs_path"]) if row.get("fs_path") else row["path"]


@dataclass(frozen=True)
class KnownFile:
    """What the index remembers of a file, enough to tell whether it changed."""

    id: int
    path: str
    size: int
    mtime_ns: int
    hash: str


@dataclass
class ImageRecord:
    """A fully processed image, ready to be written."""

    path: str
    size: int
    mtime_ns: int
    hash: str
    width: int
    height: int
    caption: str | None  # None: waiting for the captions pass
    vector: np.ndarray
    taken_at: str | None = None
    phash: str | None = None


def now() -> str:
    """The current UTC time as the store writes it (ISO 8601, seconds)."""
    return datetime.now(UTC).isoformat(timespec="seconds")
