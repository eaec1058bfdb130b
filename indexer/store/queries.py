"""The reads (and tag writes) that search, curation and the page ask of an index, by name.

Every SQL statement of the project lives in this package; callers pass plain values and get
plain values back. Filters arrive as any object with the fields of `search.filters.Filters`
(`ImageFilter` below), so the store does not depend on the search package.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Protocol

import numpy as np

from .rows import db_path_of, fs_path_of
from .schema import DATE_SQL
from .text_table import HAS_TEXT_SQL


class ImageFilter(Protocol):
    """Conditions on indexed photos; empty fields do not filter (see search.filters)."""

    folder: str | None
    taken_from: str | None
    taken_to: str | None
    orientation: str | None
    tags: tuple[str, ...]
    has_text: bool

    def active(self) -> bool: ...


def filter_sql(filters: ImageFilter | None) -> tuple[str, list]:
    """An SQL condition over `images` and its parameters ("1" when nothing filters)."""
    if filters is None:
        return "1", []
    conditions, params = [], []
    if filters.folder:
        folder = os.path.abspath(os.path.expanduser(filters.folder)).rstrip(os.sep) + os.sep
        conditions.append("substr(path, 1, ?) = ?")
        params += [len(folder), folder]
    if filters.taken_from:
        conditions.append(f"{DATE_SQL} >= ?")
        params.append(filters.taken_from)
    if filters.taken_to:
        conditions.append(f"substr({DATE_SQL}, 1, 10) <= ?")
        params.append(filters.taken_to[:10])
    conditions += {"landscape": ["width > height"], "portrait": ["height > width"],
                   "square": ["width = height"]}.get(filters.orientation or "", [])  # fmt: skip
    if getattr(filters, "has_text", False):
        conditions.append(HAS_TEXT_SQL)
    for tag in filters.tags:
        conditions.append("id IN (SELECT image_id FROM tags WHERE label = ?)")
        params.append(tag)
    return (" AND ".join(conditions) or "1"), params


class LibraryQueries:
    """Mixed into IndexStore: `self.db` is its sqlite_utils database."""

    db: object

    # --- search ---------------------------------------------------------------------

    def vector_of(self, image_id: int) -> np.ndarray | None:
        """The stored CLIP vector of one image, or None when there is no such image."""
        row = self.db.execute("SELECT vector FROM images WHERE id = ?", [image_id]).fetchone()
        return None if row is None or row[0] is None else np.frombuffer(row[0], np.float32)

    def ids_where(self, filters: ImageFilter | None) -> np.ndarray | None:
        """Ids of the images the filters allow, or None when nothing filters."""
        if filters is None or not filters.active():
            return None
        condition, params = filter_sql(filters)
        rows = self.db.execute(f"SELECT id FROM images WHERE {condition}", params)
        return np.fromiter((row[0] for row in rows), dtype=np.int64)

    def caption_matches(
        self,
        match: str,
        limit: int,
        filters: ImageFilter | None = None,
        newest_first: bool = False,
    ) -> list[tuple[int, float]]:
        """[(image id, score)] of captions matching the FTS5 query `match` among the images
        the filters allow, best first: by BM25 (higher is better), or with `newest_first` by
        row id, newest first, score 0 (BM25's word statistics read every caption of each
        word: at a million photos, seconds for everyday words)."""
        condition, params = filter_sql(filters)
        join = "" if condition == "1" else "JOIN images ON images.id = images_fts.rowid "
        score = "0" if newest_first else "bm25(images_fts)"
        order = "images_fts.rowid DESC" if newest_first else "score"
        rows = self.db.execute(
            f"SELECT images_fts.rowid, {score} AS score FROM images_fts {join}"
            f"WHERE images_fts MATCH ? AND {condition} ORDER BY {order} LIMIT ?",
            [match, *params, limit],
        )
        # bm25() is lower-is-better and negative; report it as higher-is-better
        return [(int(rowid), -float(score) if score else 0.0) for rowid, score in rows]

    def caption_word_counts(self, words: Sequence[str], cap: int) -> dict[str, int]:
        """How many captions contain each word (as FTS5 matches it: stemmed), counted no
        further than `cap`, so an everyday word costs no more than a rare one."""
        return {
            word: self.db.execute(
                "SELECT count(*) FROM (SELECT rowid FROM images_fts WHERE images_fts MATCH ? "
                "LIMIT ?)", ['"' + word.replace('"', '""') + '"', cap],
            ).fetchone()[0]
            for word in words
        }  # fmt: skip

    def image_paths(self) -> list[str]:
        """The text path of every indexed image."""
        return [path for (path,) in self.db.execute("SELECT path FROM images")]

    # --- curation -------------------------------------------------------------------

    def image_by_path(self, path: str) -> dict | None:
        """{"id", "caption"} of the image indexed at `path`, or None."""
        rows = self.db.query("SELECT id, caption FROM images WHERE path = ?", [db_path_of(path)[0]])
        return next(iter(rows), None)

    def any_indexed(self, paths: Iterable[str]) -> bool:
        """True when one of `paths` is an indexed image."""
        keys = sorted({db_path_of(str(path))[0] for path in paths})
        if not keys:
            return False
        marks = ",".join("?" * len(keys))
        found = self.db.execute(f"SELECT 1 FROM images WHERE path IN ({marks}) LIMIT 1", keys)
        return found.fetchone() is not None

    def any_image_under(self, folder: str) -> bool:
        """True when an indexed image lies under `folder` (at any depth)."""
        prefix = db_path_of(str(folder).rstrip(os.sep) + os.sep)[0]
        found = self.db.execute(
            "SELECT 1 FROM images WHERE substr(path, 1, ?) = ? LIMIT 1", [len(prefix), prefix]
        ).fetchone()
        return found is not None

    def grouping_rows(self) -> list[dict]:
        """What duplicate grouping needs of every image: id, path (file-system), hash, phash,
        width, height, taken_at, mtime_ns, caption and `date` (taken, else file time)."""
        rows = self.db.query(
            "SELECT id, path, fs_path, hash, phash, width, height, taken_at, mtime_ns, caption, "
            f"{DATE_SQL} AS date FROM images"
        )
        return [dict(row, path=fs_path_of(row)) for row in rows]

    # --- tags -----------------------------------------------------------------------

    def replace_tags(self, labels: Sequence[str], rows: Iterable[tuple]) -> None:
        """Drop every tag of `labels`, then store `rows` of (image id, label, score, model) in
        one transaction; rows of images removed meanwhile are skipped."""
        marks = ",".join("?" * len(labels))
        with self.db.atomic():
            self.db.execute(f"DELETE FROM tags WHERE label IN ({marks})", list(labels))
            self.db.conn.executemany(
                "INSERT OR REPLACE INTO tags (image_id, label, score, model) "
                "SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM images WHERE id = ?)",
                [(*row, row[0]) for row in rows],
            )

    def tag_counts(self) -> dict[str, int]:
        """Every stored label and how many photos carry it, most common first."""
        rows = self.db.execute(
            "SELECT label, count(*) AS n FROM tags GROUP BY label ORDER BY n DESC, label"
        )
        return {label: count for label, count in rows}

    def tags_of(self, image_id: int) -> list[str]:
        """The labels photo `image_id` carries, best score first."""
        rows = self.db.execute(
            "SELECT label FROM tags WHERE image_id = ? ORDER BY score DESC, label", [image_id]
        )
        return [label for (label,) in rows]

    def tagged_images(self, labels: Sequence[str]) -> list[dict]:
        """Images carrying every one of `labels`: id, path, caption, width, height, date and
        `score` (the lowest of their scores for those labels), best first."""
        marks = ",".join("?" * len(labels))
        rows = self.db.query(
            "SELECT images.id, path, fs_path, caption, width, height, "
            f"{DATE_SQL} AS date, min(tags.score) AS score FROM images "
            f"JOIN tags ON tags.image_id = images.id WHERE tags.label IN ({marks}) "
            "GROUP BY images.id HAVING count(*) = ? ORDER BY score DESC, path",
            [*labels, len(labels)],
        )
        return [
            {"id": row["id"], "path": fs_path_of(row), "caption": row["caption"] or "",
             "width": row["width"], "height": row["height"], "date": row["date"],
             "score": row["score"]}
            for row in rows
        ]  # fmt: skip
