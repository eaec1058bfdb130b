"""Filters that photo libraries need: folder, date taken, orientation, tags.

A filter becomes one SQL condition over the `images` table; the ids it allows restrict both
the FAISS search (through an id selector) and the caption search, so a narrow filter still
returns its best matches instead of whatever survives a cut of the global top hits.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from indexer.store import DATE_SQL, IndexStore

ORIENTATIONS = ("landscape", "portrait", "square")



@dataclass(frozen=True)
class Filters:
    """Conditions a hit must meet; empty fields do not filter.

    `folder`: only photos under this folder. `taken_from` / `taken_to`: ISO dates
    (YYYY-MM-DD, both days included). `orientation`: landscape, portrait or square.
    `tags`: labels every hit must carry (see `indexer tag`).
    """

    folder: str | None = None
    taken_from: str | None = None
    taken_to: str | None = None
    orientation: str | None = None
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.orientation and self.orientation not in ORIENTATIONS:
            raise ValueError(f"orientation must be one of {', '.join(ORIENTATIONS)}")

    def active(self) -> bool:
        """True when any condition is set."""
        return bool(self.folder or self.taken_from or self.taken_to or self.orientation
                    or self.tags)  # fmt: skip

    def where(self) -> tuple[str, list]:
        """An SQL condition over `images` and its parameters ("1" when nothing filters)."""
        conditions, params = [], []
        if self.folder:
            folder = os.path.abspath(os.path.expanduser(self.folder)).rstrip(os.sep) + os.sep
            conditions.append("substr(path, 1, ?) = ?")
            params += [len(folder), folder]
        if self.taken_from:
            conditions.append(f"{DATE_SQL} >= ?")
            params.append(self.taken_from)
        if self.taken_to:
            conditions.append(f"substr({DATE_SQL}, 1, 10) <= ?")
            params.append(self.taken_to[:10])
        if self.orientation == "landscape":
            conditions.append("width > height")
        elif self.orientation == "portrait":
            conditions.append("height > width")
        elif self.orientation == "square":
            conditions.append("width = height")
        for tag in self.tags:
            conditions.append("id IN (SELECT image_id FROM tags WHERE label = ?)")
            params.append(tag)
        return (" AND ".join(conditions) or "1"), params


def allowed_ids(store: IndexStore, filters: Filters | None) -> np.ndarray | None:
    """Ids of the images the filters allow, or None when nothing filters."""
    if filters is None or not filters.active():
        return None
    condition, params = filters.where()
    rows = store.db.execute(f"SELECT id FROM images WHERE {condition}", params)
    return np.fromiter((row[0] for row in rows), dtype=np.int64)
