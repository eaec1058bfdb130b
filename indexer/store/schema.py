"""The tables of an index database, and the upgrade of older ones in place."""

from __future__ import annotations

from .passes import PENDING_INDEX_SQL
from .text_table import TEXT_TABLE_SQL, fill_caption_table

SCHEMA_VERSION = 4  # 2: taken_at, phash, tags; 3: text in photos; 4: CJK caption substrings
TEXT_COLUMNS = ("ocr_text", "ocr_lines", "ocr_model")
# The date a photo was taken: EXIF when the file had it, else its modification time (UTC).
DATE_SQL = "COALESCE(taken_at, strftime('%Y-%m-%dT%H:%M:%S', mtime_ns / 1e9, 'unixepoch'))"


def create_tables(db) -> None:
    """Create whatever tables and indexes the sqlite_utils database `db` lacks."""
    with db.atomic():
        db["meta"].create({"key": str, "value": str}, pk="key", if_not_exists=True)
        db["images"].create(
            {
                "id": int, "path": str, "fs_path": bytes, "size": int, "mtime_ns": int,
                "hash": str, "width": int, "height": int, "caption": str,
                "caption_model": str, "clip_model": str, "vector": bytes, "indexed_at": str,
                "taken_at": str, "phash": str, "ocr_text": str, "ocr_lines": str,
                "ocr_model": str,
            },
            pk="id", not_null={"path", "hash"}, if_not_exists=True,
        )  # fmt: skip
        db["images"].create_index(["path"], unique=True, if_not_exists=True)
        db["images"].create_index(["hash"], if_not_exists=True)
        db.execute(PENDING_INDEX_SQL)  # the captions pass finds its work without a scan
        if "images_fts" not in db.table_names():
            # captions searchable by words; triggers keep it in step with the rows
            db["images"].enable_fts(
                ["caption"], fts_version="FTS5", create_triggers=True, tokenize="porter"
            )
        for statement in TEXT_TABLE_SQL:  # text in photos, searchable by substring
            db.execute(statement)
        db["failures"].create(
            {"path": str, "fs_path": bytes, "size": int, "mtime_ns": int, "reason": str,
             "failed_at": str},
            pk="path", if_not_exists=True,
        )  # fmt: skip
        db["tags"].create(
            {"image_id": int, "label": str, "score": float, "model": str},
            pk=("image_id", "label"),
            if_not_exists=True,
        )
        db["tags"].create_index(["label"], if_not_exists=True)
        if db.execute("SELECT 1 FROM meta WHERE key = 'schema_version'").fetchone() is None:
            db["meta"].upsert({"key": "schema_version", "value": str(SCHEMA_VERSION)}, pk="key")
            db["meta"].upsert({"key": "vectors_version", "value": "0"}, pk="key")


def upgrade(db) -> None:
    """Bring an index written by an older version up to this schema (cheap: no rewrite)."""
    columns = db["images"].columns_dict
    with db.atomic():
        for name in ("taken_at", "phash", *TEXT_COLUMNS):
            if name not in columns:
                db["images"].add_column(name, str)
        db["meta"].upsert({"key": "schema_version", "value": str(SCHEMA_VERSION)}, pk="key")
    create_tables(db)  # tables, indexes and triggers added since (they need the columns)
    fill_caption_table(db)
