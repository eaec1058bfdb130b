"""IndexStore: opening an index database, and what a build reads and writes."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from ..errors import IndexCorrupt, IndexerError
from .passes import PassQueries
from .photo_text import TextQueries
from .queries import LibraryQueries
from .rows import ImageRecord, KnownFile, db_path_of, now
from .schema import DATE_SQL, SCHEMA_VERSION, create_tables, upgrade

DB_NAME = "index.db"


class IndexStore(LibraryQueries, PassQueries, TextQueries):
    """The SQLite side of an index folder. Use `IndexStore.open`."""

    def __init__(self, index_dir: Path, db) -> None:
        self.index_dir = index_dir
        self.db = db

    @classmethod
    def open(cls, index_dir: str | os.PathLike, create: bool = False) -> IndexStore:
        """Open the index in `index_dir`; with `create`, make the folder and tables as needed.

        Raises IndexerError when there is no index (and not `create`), IndexCorrupt when the
        database cannot be read.
        """
        import sqlite_utils

        folder = Path(index_dir)
        db_file = folder / DB_NAME
        if not create and not db_file.exists():
            raise IndexerError(f"no index in {folder}; run `indexer build PHOTOS_FOLDER` first")
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        try:
            connection = sqlite3.connect(db_file, timeout=30, check_same_thread=False)
            db = sqlite_utils.Database(connection)
            store = cls(folder, db)
            store._prepare(create)
        except sqlite3.DatabaseError as error:
            raise IndexCorrupt(
                f"index database {db_file} is damaged ({error}); move it away and run "
                "`indexer build` again to rebuild the index"
            ) from None
        return store

    def _prepare(self, create: bool) -> None:
        self.db.execute("PRAGMA busy_timeout = 30000")
        if create:
            with self.db.ensure_autocommit_on():
                self.db.execute("PRAGMA journal_mode = wal")
            create_tables(self.db)
        self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        version = self.get_meta("schema_version")
        if version is not None and int(version) > SCHEMA_VERSION:
            raise IndexerError(
                f"index in {self.index_dir} was written by a newer version (schema {version})"
            )
        if version is not None and int(version) < SCHEMA_VERSION:
            upgrade(self.db)

    def check_integrity(self) -> None:
        """Read the whole database once (SQLite's quick_check); raise IndexCorrupt if damaged."""
        db_file = self.index_dir / DB_NAME
        try:
            problems = [row[0] for row in self.db.execute("PRAGMA quick_check(5)")]
        except sqlite3.DatabaseError as error:
            problems = [str(error)]
        if problems != ["ok"]:
            raise IndexCorrupt(
                f"index database {db_file} is damaged ({problems[0]}); move it away and run "
                "`indexer build` again to rebuild the index"
            )

    def close(self) -> None:
        """Close the database connection."""
        self.db.close()

    # --- meta -------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        """A value from the meta table, or None."""
        if "meta" not in self.db.table_names():
            return None
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        """Set a meta value (inside the caller's transaction, if any)."""
        self.db["meta"].upsert({"key": key, "value": value}, pk="key")

    def models(self) -> dict[str, str | int | None]:
        """The models recorded in the index: caption and CLIP model names and vector size."""
        dim = self.get_meta("vector_dim")
        return {
            "caption_model": self.get_meta("caption_model"),
            "clip_model": self.get_meta("clip_model"),
            "vector_dim": int(dim) if dim else None,
        }

    def vectors_version(self) -> int:
        """A counter bumped by every commit that changes the set of vectors."""
        return int(self.get_meta("vectors_version") or 0)

    # --- reading ----------------------------------------------------------------------

    def count_images(self) -> int:
        """Number of images in the index."""
        return self.db["images"].count

    def count_failures(self) -> int:
        """Number of files that could not be indexed."""
        return self.db["failures"].count

    def known_files(self) -> dict[str, KnownFile]:
        """Every indexed image's file facts, by file-system path."""
        rows = self.db.execute("SELECT id, path, fs_path, size, mtime_ns, hash FROM images")
        known = {}
        for id_, path, fs_path, size, mtime_ns, hash_ in rows:
            real = os.fsdecode(fs_path) if fs_path else path
            known[real] = KnownFile(id_, real, size, mtime_ns, hash_)
        return known

    def known_failures(self) -> dict[str, tuple[int, int]]:
        """Every recorded failure's (size, mtime_ns), by file-system path."""
        rows = self.db.execute("SELECT path, fs_path, size, mtime_ns FROM failures")
        return {(os.fsdecode(fs) if fs else p): (s, m) for p, fs, s, m in rows}

    def failures(self, limit: int | None = None) -> list[dict]:
        """Failure rows (path, reason, ...), oldest first."""
        sql = "SELECT path, size, mtime_ns, reason, failed_at FROM failures ORDER BY path"
        return list(self.db.query(sql + (f" LIMIT {int(limit)}" if limit else "")))

    def image(self, image_id: int) -> dict | None:
        """One image row without its vector, or None."""
        rows = self.db.query(
            "SELECT id, path, fs_path, size, mtime_ns, hash, width, height, caption, "
            "caption_model, clip_model, indexed_at, taken_at, phash, ocr_text, ocr_model, "
            f"{DATE_SQL} AS date FROM images WHERE id = ?",
            [image_id],
        )
        return next(iter(rows), None)

    def image_with_hash(self, hash_: str) -> dict | None:
        """Any image row (with its vector) whose content has this hash, or None."""
        rows = self.db.query("SELECT * FROM images WHERE hash = ? LIMIT 1", [hash_])
        return next(iter(rows), None)

    def sample_vectors(self, size: int) -> np.ndarray:
        """Up to `size` stored vectors drawn at random (to train an approximate index)."""
        rows = self.db.execute(
            "SELECT vector FROM images WHERE id IN "
            "(SELECT id FROM images WHERE vector IS NOT NULL ORDER BY random() LIMIT ?)",
            [size],
        )
        return np.stack([np.frombuffer(row[0], dtype=np.float32) for row in rows])

    def iter_vectors(self, batch: int = 10_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) in batches, for rebuilding the FAISS index."""
        cursor = self.db.execute("SELECT id, vector FROM images WHERE vector IS NOT NULL")
        while rows := cursor.fetchmany(batch):
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            vectors = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
            yield ids, vectors

    # --- writing (each call is one transaction unless the caller holds one) -----------

    def record_models(self, caption_model: str, clip_model: str, vector_dim: int) -> None:
        """Remember which models made the index."""
        with self.db.atomic():
            self.set_meta("caption_model", caption_model)
            self.set_meta("clip_model", clip_model)
            self.set_meta("vector_dim", str(vector_dim))

    def _bump_vectors_version(self) -> None:
        self.set_meta("vectors_version", str(self.vectors_version() + 1))

    def save_images(
        self, records: Sequence[ImageRecord], caption_model: str, clip_model: str
    ) -> list[int]:
        """Insert or replace images (by path) in one transaction; return their row ids."""
        ids = []
        with self.db.atomic():
            for record in records:
                text, raw = db_path_of(record.path)
                row = {
                    "path": text, "fs_path": raw, "size": record.size,
                    "mtime_ns": record.mtime_ns, "hash": record.hash, "width": record.width,
                    "height": record.height, "caption": record.caption,
                    "caption_model": caption_model if record.caption is not None else None,
                    "clip_model": clip_model,
                    "vector": np.ascontiguousarray(record.vector, dtype=np.float32).tobytes(),
                    "indexed_at": now(), "taken_at": record.taken_at, "phash": record.phash,
                    "ocr_text": None, "ocr_lines": None, "ocr_model": None,  # read anew
                }  # fmt: skip
                existing = self.db.execute(
                    "SELECT id FROM images WHERE path = ?", [text]
                ).fetchone()
                if existing:  # new content: what was derived from the old one goes
                    self.db["images"].update(existing[0], row)
                    self.db.execute("DELETE FROM tags WHERE image_id = ?", [existing[0]])
                    ids.append(existing[0])
                else:
                    ids.append(self.db["images"].insert(row).last_pk)
                self.db.execute("DELETE FROM failures WHERE path = ?", [text])
            self._bump_vectors_version()
        return ids

    def insert_new_images(
        self, records: Iterable[ImageRecord], caption_model: str, clip_model: str
    ) -> int:
        """Insert images whose paths are not indexed yet, in one transaction and without the
        per-row lookups of `save_images` (a large library at once: the benchmark's millions).
        A path already indexed raises sqlite3.IntegrityError and nothing is written. Returns
        how many were inserted."""
        stamp = now()
        rows = (
            (*db_path_of(r.path), r.size, r.mtime_ns, r.hash, r.width, r.height, r.caption,
             caption_model if r.caption is not None else None, clip_model,
             np.ascontiguousarray(r.vector, np.float32).tobytes(),
             stamp, r.taken_at, r.phash)
            for r in records
        )  # fmt: skip
        with self.db.atomic():
            cursor = self.db.conn.executemany(
                "INSERT INTO images (path, fs_path, size, mtime_ns, hash, width, height, caption, "
                "caption_model, clip_model, vector, indexed_at, taken_at, phash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            self._bump_vectors_version()
        return cursor.rowcount

    def move_image(self, image_id: int, new_path: str, size: int, mtime_ns: int) -> None:
        """Point an image row at the path its file moved to."""
        text, raw = db_path_of(new_path)
        with self.db.atomic():
            self.db["images"].update(
                image_id, {"path": text, "fs_path": raw, "size": size, "mtime_ns": mtime_ns}
            )
            self.db.execute("DELETE FROM failures WHERE path = ?", [text])

    def touch_image(self, image_id: int, size: int, mtime_ns: int) -> None:
        """Record new file facts for an image whose content did not change."""
        self.db["images"].update(image_id, {"size": size, "mtime_ns": mtime_ns})

    def remove_images(self, ids: Iterable[int]) -> int:
        """Delete image rows; return how many went."""
        ids = list(ids)
        with self.db.atomic():
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                self.db.execute(f"DELETE FROM images WHERE id IN ({marks})", chunk)
                self.db.execute(f"DELETE FROM tags WHERE image_id IN ({marks})", chunk)
            if ids:
                self._bump_vectors_version()
        return len(ids)

    def record_failures(self, failures: Iterable[tuple[str, int, int, str]]) -> None:
        """Record (path, size, mtime_ns, reason) for files that could not be indexed."""
        with self.db.atomic():
            for path, size, mtime_ns, reason in failures:
                text, raw = db_path_of(path)
                self.db["failures"].upsert(
                    {"path": text, "fs_path": raw, "size": size, "mtime_ns": mtime_ns,
                     "reason": reason, "failed_at": now()},
                    pk="path",
                )  # fmt: skip

    def remove_failures(self, paths: Iterable[str]) -> None:
        """Forget failures of files that are gone."""
        with self.db.atomic():
            for path in paths:
                self.db.execute("DELETE FROM failures WHERE path = ?", [db_path_of(path)[0]])

    def drop_all_images(self) -> None:
        """Empty the index (for a rebuild with other models)."""
        with self.db.atomic():
            self.db.execute("DELETE FROM images")
            self.db.execute("DELETE FROM tags")
            self.db.execute("DELETE FROM failures")
            self.db.execute(
                "DELETE FROM meta WHERE key IN ('caption_model', 'clip_model', 'vector_dim')"
            )
            self._bump_vectors_version()
