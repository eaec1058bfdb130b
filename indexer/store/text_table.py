"""The table that makes the text read in photos searchable by substring (see photo_text)."""

from __future__ import annotations

HAS_TEXT_SQL = "(ocr_text IS NOT NULL AND ocr_text != '')"  # some text was read in the photo
# White space that OCR may or may not put between words (the last: the ideographic space).
_SPACES = (" ", "\n", "\r", "\t", "\u3000")


def squashed_sql(column: str) -> str:
    """SQL for `column` with the spaces OCR is unsure about taken out."""
    expression = column
    for space in _SPACES:
        expression = f"replace({expression}, char({ord(space)}), '')"
    return expression


def squash(text: str) -> str:
    """`text` as the text table holds it: without white space (case does not matter)."""
    for space in _SPACES:
        text = text.replace(space, "")
    return text


# Letters of the scripts written without spaces (kana, CJK ideographs, Hangul syllables):
# captions with some are kept in the caption substring table too (see CAPTION_TABLE).
CJK_GLOB = "*[\u3040-\u9fff\uac00-\ud7af]*"


def substring_table_sql(table: str, column: str, condition: str) -> tuple[str, ...]:
    """An FTS5 trigram table `table` holding `images.column` without spaces for the rows
    where `condition` (over `new.`) holds, and the triggers that keep it in step."""
    value = squashed_sql(f"new.{column}")
    return (
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {table} USING fts5(squashed, tokenize='trigram')",
        f"CREATE TRIGGER IF NOT EXISTS {table}_insert AFTER INSERT ON images WHEN {condition} "
        f"BEGIN INSERT INTO {table}(rowid, squashed) VALUES (new.id, {value}); END",
        f"CREATE TRIGGER IF NOT EXISTS {table}_delete AFTER DELETE ON images BEGIN "
        f"DELETE FROM {table} WHERE rowid = old.id; END",
        f"CREATE TRIGGER IF NOT EXISTS {table}_update AFTER UPDATE OF {column} ON images BEGIN "
        f"DELETE FROM {table} WHERE rowid = old.id; INSERT INTO {table}(rowid, squashed) "
        f"SELECT new.id, {value} WHERE {condition}; END",
    )


HAS_CJK_CAPTION = f"new.caption GLOB '{CJK_GLOB}'"
# Captions in Chinese, Japanese or Korean have no spaces for the word index to split them
# at: they are found by substring here (search.retrieve)
CAPTION_TABLE = "caption_text"
TEXT_TABLE_SQL = (
    *substring_table_sql(
        "photo_text", "ocr_text", "new.ocr_text IS NOT NULL AND new.ocr_text != ''"
    ),
    *substring_table_sql(CAPTION_TABLE, "caption", HAS_CJK_CAPTION),
    "CREATE INDEX IF NOT EXISTS images_ocr_model ON images(ocr_model)",
)


def fill_caption_table(db) -> None:
    """Put the CJK captions an index had before it had the caption substring table in it."""
    with db.atomic():
        db.execute(
            f"INSERT INTO {CAPTION_TABLE}(rowid, squashed) SELECT id, "
            f"{squashed_sql('caption')} FROM images WHERE caption GLOB ? "
            f"AND id NOT IN (SELECT rowid FROM {CAPTION_TABLE})",
            [CJK_GLOB],
        )
