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


TEXT_TABLE_SQL = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS photo_text USING fts5(squashed, tokenize='trigram')",
    "CREATE TRIGGER IF NOT EXISTS photo_text_insert AFTER INSERT ON images "
    "WHEN new.ocr_text IS NOT NULL AND new.ocr_text != '' BEGIN "
    f"INSERT INTO photo_text(rowid, squashed) VALUES (new.id, {squashed_sql('new.ocr_text')}); "
    "END",
    "CREATE TRIGGER IF NOT EXISTS photo_text_delete AFTER DELETE ON images BEGIN "
    "DELETE FROM photo_text WHERE rowid = old.id; END",
    "CREATE TRIGGER IF NOT EXISTS photo_text_update AFTER UPDATE OF ocr_text ON images BEGIN "
    "DELETE FROM photo_text WHERE rowid = old.id; "
    f"INSERT INTO photo_text(rowid, squashed) SELECT new.id, {squashed_sql('new.ocr_text')} "
    "WHERE new.ocr_text IS NOT NULL AND new.ocr_text != ''; END",
    "CREATE INDEX IF NOT EXISTS images_ocr_model ON images(ocr_model)",
)
