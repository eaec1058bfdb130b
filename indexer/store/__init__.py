"""The index's records: one SQLite database (through sqlite-utils) in the index folder.

The rows are the truth: each image row holds its path, file facts, caption, the names of
the models that made it and its L2-normalised CLIP vector. The FAISS file beside it is
derived from those vectors (see vector_index.py). Paths that are not valid UTF-8 are kept
as a readable text key plus the raw bytes, so such files are indexed like any other.

This package is the only code of the project that speaks SQL (a test keeps it so):
`index_store` (opening, build-side reads and writes), `queries` (what search, curation and
the page read, by name), `passes` and `photo_text` (the later passes' work lists; the text
in photos and its substring search), `schema` and `text_table` (tables, triggers and
upgrades), `rows` (records and paths).
"""

from .index_store import DB_NAME, IndexStore
from .queries import ImageFilter
from .rows import ImageRecord, KnownFile, db_path_of, fs_path_of
from .schema import SCHEMA_VERSION

__all__ = ["DB_NAME", "SCHEMA_VERSION", "ImageFilter", "ImageRecord", "IndexStore", "KnownFile",
           "db_path_of", "fs_path_of"]  # fmt: skip
