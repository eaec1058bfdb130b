"""The SQL of the build's later passes: which photos still wait for captions, and filling
them in; and the content keys that removals leave unused (their prepared files go)."""

from __future__ import annotations

from collections.abc import Iterable

from .rows import fs_path_of

PENDING_INDEX_SQL = (
    "CREATE INDEX IF NOT EXISTS images_caption_pending ON images(id) WHERE caption IS NULL"
)


class PassQueries:
    """Mixed into IndexStore: `self.db` is its sqlite_utils database."""

    db: object

    def count_pending_captions(self) -> int:
        """Photos indexed (searchable by CLIP) whose caption is not made yet."""
        return self.db.execute("SELECT COUNT(*) FROM images WHERE caption IS NULL").fetchone()[0]

    def pending_captions(self, after_id: int, limit: int) -> list[dict]:
        """Up to `limit` photos waiting for a caption with ids above `after_id`, by id:
        {"id", "path" (file system), "hash"}."""
        rows = self.db.query(
            "SELECT id, path, fs_path, hash FROM images "
            "WHERE caption IS NULL AND id > ? ORDER BY id LIMIT ?",
            [after_id, limit],
        )
        return [{"id": row["id"], "path": fs_path_of(row), "hash": row["hash"]} for row in rows]

    def set_captions(self, captions: Iterable[tuple[str, str]], caption_model: str) -> int:
        """Give every photo of each content (hash) still without a caption its caption, in
        one transaction; return how many photos got one."""
        changed = 0
        with self.db.atomic():
            for content_hash, caption in captions:
                cursor = self.db.execute(
                    "UPDATE images SET caption = ?, caption_model = ? "
                    "WHERE hash = ? AND caption IS NULL",
                    [caption, caption_model, content_hash],
                )
                changed += cursor.rowcount
        return changed

    def hashes_of(self, ids: Iterable[int]) -> set[str]:
        """The content keys of these photos."""
        ids, found = list(ids), set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(f"SELECT hash FROM images WHERE id IN ({marks})", chunk)
            found.update(hash_ for (hash_,) in rows)
        return found

    def unused_hashes(self, hashes: Iterable[str]) -> set[str]:
        """Those of `hashes` that no indexed photo has."""
        query = "SELECT 1 FROM images WHERE hash = ? LIMIT 1"
        return {h for h in set(hashes) if self.db.execute(query, [h]).fetchone() is None}
