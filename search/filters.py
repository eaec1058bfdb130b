"""Filters that photo libraries need: folder, date taken, orientation, tags, text in photo.

The store turns a filter into one condition over the indexed photos (`IndexStore.ids_where`);
the ids it allows restrict both the FAISS search (through an id selector) and the caption
search, so a narrow filter still returns its best matches instead of whatever survives a
cut of the global top hits.
"""

from __future__ import annotations

from dataclasses import dataclass

ORIENTATIONS = ("landscape", "portrait", "square")


@dataclass(frozen=True)
class Filters:
    """Conditions a hit must meet; empty fields do not filter.

    `folder`: only photos under this folder. `taken_from` / `taken_to`: ISO dates
    (YYYY-MM-DD, both days included). `orientation`: landscape, portrait or square.
    `tags`: labels every hit must carry (see `indexer tag`). `has_text`: only photos with
    text read in them (see indexer.ocr).
    """

    folder: str | None = None
    taken_from: str | None = None
    taken_to: str | None = None
    orientation: str | None = None
    tags: tuple[str, ...] = ()
    has_text: bool = False

    def __post_init__(self) -> None:
        if self.orientation and self.orientation not in ORIENTATIONS:
            raise ValueError(f"orientation must be one of {', '.join(ORIENTATIONS)}")

    def active(self) -> bool:
        """True when any condition is set."""
        return bool(self.folder or self.taken_from or self.taken_to or self.orientation
                    or self.tags or self.has_text)  # fmt: skip
