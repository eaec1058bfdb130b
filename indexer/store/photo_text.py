"""The SQL of the text read in photos (OCR): the OCR pass's work list and results, and the
substring search over that text.

Each photo row holds its text (`ocr_text`: the lines, one per line), the lines with their
confidence and box (`ocr_lines`, JSON) and the name of the reader that made them
(`ocr_model`: the pass's "done" marker, so another reader reads every photo again). The text
is kept a second time, squashed (white space removed), in the FTS5 table `photo_text` with
the trigram tokenizer: a query word then matches inside a run of letters, which is what OCR
gives where it drops spaces ("OPEN24HOURS") and what Chinese is written as. Triggers keep
that table in step with the rows, so removing or replacing a photo needs nothing more.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .queries import ImageFilter, filter_sql
from .rows import fs_path_of
from .text_table import CAPTION_TABLE, HAS_TEXT_SQL, squash

_NOT_READ_BY = "(ocr_model IS NULL OR ocr_model != ?)"


class TextQueries:
    """Mixed into IndexStore: `self.db` is its sqlite_utils database."""

    db: object

    # --- the OCR pass -------------------------------------------------------------------

    def count_text_pending(self, model: str) -> int:
        """Photos whose text `model` has not read yet."""
        query = f"SELECT COUNT(*) FROM images WHERE {_NOT_READ_BY}"
        return self.db.execute(query, [model]).fetchone()[0]

    def pending_text(self, model: str, after_id: int, limit: int) -> list[dict]:
        """Up to `limit` photos not read by `model` with ids above `after_id`, by id:
        {"id", "path" (file system), "hash"}."""
        rows = self.db.query(
            f"SELECT id, path, fs_path, hash FROM images WHERE {_NOT_READ_BY} AND id > ? "
            "ORDER BY id LIMIT ?",
            [model, after_id, limit],
        )
        return [{"id": row["id"], "path": fs_path_of(row), "hash": row["hash"]} for row in rows]

    def adopt_text(self, model: str) -> int:
        """Give photos not read by `model` the text it read in a copy of their content (a
        copy indexed after the original); return how many got one."""
        with self.db.atomic():
            cursor = self.db.execute(
                "UPDATE images SET (ocr_text, ocr_lines, ocr_model) = (SELECT ocr_text, "
                "ocr_lines, ocr_model FROM images AS done WHERE done.hash = images.hash AND "
                f"done.ocr_model = ? LIMIT 1) WHERE {_NOT_READ_BY} AND EXISTS (SELECT 1 FROM "
                "images AS done WHERE done.hash = images.hash AND done.ocr_model = ?)",
                [model, model, model],
            )
        return cursor.rowcount

    def set_text(self, texts: Iterable[tuple[str, str, str]], model: str) -> int:
        """Store (content hash, text, lines as JSON) for every photo of each content that
        `model` has not read, in one transaction; return how many photos were updated."""
        changed = 0
        with self.db.atomic():
            for content_hash, text, lines in texts:
                cursor = self.db.execute(
                    "UPDATE images SET ocr_text = ?, ocr_lines = ?, ocr_model = ? "
                    f"WHERE hash = ? AND {_NOT_READ_BY}",
                    [text, lines, model, content_hash, model],
                )
                changed += cursor.rowcount
        return changed

    def text_counts(self) -> dict[str, int]:
        """{"read": photos whose text was read (by any reader), "with_text": those with some
        text}."""
        read, with_text = self.db.execute(
            f"SELECT COUNT(ocr_model), COALESCE(SUM({HAS_TEXT_SQL}), 0) FROM images"
        ).fetchone()
        return {"read": read, "with_text": with_text}

    # --- search -------------------------------------------------------------------------

    def text_matches(
        self, term: str, limit: int, filters: ImageFilter | None = None, in_captions=False
    ) -> list[int]:
        """Ids of photos whose text (or, `in_captions`, whose Chinese, Japanese or Korean
        caption) contains `term` (spaces and case aside), newest first, at most `limit`,
        among the photos the filters allow. Terms of three characters or more use the
        trigram index; shorter ones read every text in the table."""
        term = squash(term)
        if not term or limit <= 0:
            return []
        table = CAPTION_TABLE if in_captions else "photo_text"
        condition, params = filter_sql(filters)
        join = "" if condition == "1" else f"JOIN images ON images.id = {table}.rowid "
        if len(term) >= 3:
            match, value = f"{table} MATCH ?", '"' + term.replace('"', '""') + '"'
        else:
            match, value = f"{table}.squashed LIKE ? ESCAPE '\\'", "%" + _like(term) + "%"
        rows = self.db.execute(
            f"SELECT {table}.rowid FROM {table} {join}WHERE {match} AND {condition} "
            f"ORDER BY {table}.rowid DESC LIMIT ?",
            [value, *params, limit],
        )
        return [int(rowid) for (rowid,) in rows]

    def photos_with_text(self) -> int:
        """How many photos have some text."""
        return self.db.execute("SELECT COUNT(*) FROM photo_text").fetchone()[0]

    def texts_of(self, ids: Sequence[int]) -> dict[int, tuple[str, str]]:
        """{image id: (text, lines as JSON)} of those photos that have text."""
        found: dict[int, tuple[str, str]] = {}
        ids = list(ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT id, ocr_text, ocr_lines FROM images WHERE id IN ({marks}) "
                f"AND {HAS_TEXT_SQL}",
                chunk,
            )
            found.update({image_id: (text, lines) for image_id, text, lines in rows})
        return found


def _like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
