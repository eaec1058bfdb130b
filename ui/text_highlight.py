"""The text read in a photo as Markdown, with the query's words in it highlighted.

Photo text is untrusted: a sign may say `<script>`, `**`, `[link](x)` or `:red[...]`, so
every character of it is escaped (ui.shared.escape) and only the highlight marks this module
adds are Markdown. Matching is what the text search does (indexer/store/photo_text.py):
case and white space aside, so the term "open24hours" marks "OPEN 24 HOURS" and "咖啡" marks
the middle of "欢迎光临咖啡店".
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ui.shared import escape

MARK = ":orange-background[**{}**]"  # Streamlit's Markdown highlight, in bold: escaped text


def squashed(text: str) -> tuple[str, list[int]]:
    """`text` lower-cased without white space, and for each of its characters the index of
    the character of `text` it comes from (lower-casing can make one character two)."""
    chars: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        if char.isspace():
            continue
        for lower in char.lower():
            chars.append(lower)
            origin.append(index)
    return "".join(chars), origin


def matched_spans(text: str, terms: Iterable[str]) -> list[tuple[int, int]]:
    """The (start, end) ranges of `text` that the terms match, case and white space aside,
    in order, merged where they overlap or only white space parts them. A span starts and
    ends on a character that is not white space, and covers the white space inside it."""
    flat, origin = squashed(text)
    found = []
    for term in terms:
        needle = squashed(term)[0]
        if not needle:
            continue
        at = flat.find(needle)
        while at >= 0:
            found.append((origin[at], origin[at + len(needle) - 1] + 1))
            at = flat.find(needle, at + 1)
    merged: list[tuple[int, int]] = []
    for start, end in sorted(found):
        if merged and (start <= merged[-1][1] or text[merged[-1][1] : start].isspace()):
            merged[-1] = merged[-1][0], max(merged[-1][1], end)
        else:
            merged.append((start, end))
    return merged


def highlighted(text: str, terms: Iterable[str]) -> str:
    """`text` as Markdown: one line per line of text (blank ones dropped), every character
    escaped, the parts the terms match marked. A match that runs on to the next line is
    marked on each line it covers."""
    spans = matched_spans(text, terms)
    lines, start = [], 0
    for line in text.split("\n"):
        end = start + len(line)
        shown = _marked_line(text, start, end, spans)
        if shown:
            lines.append(shown)
        start = end + 1
    return "  \n".join(lines)  # two spaces: a line break in Markdown


def _marked_line(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> str:
    """text[start:end], stripped of white space at its ends, escaped, with the spans in it
    marked."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    parts, at = [], start
    for span_start, span_end in spans:
        left, right = max(span_start, start), min(span_end, end)
        if left >= right:
            continue
        parts.append(literal(text[at:left]))
        parts.append(MARK.format(literal(text[left:right])))
        at = right
    parts.append(literal(text[at:end]))
    return "".join(parts)


def literal(text: str) -> str:
    """`text` shown as it is in Markdown: ui.shared.escape, and also `&` (else "&lt;" would
    show as "<") and `=` (a line of "=" would make the line before it a heading)."""
    return re.sub(r"([&=])", r"\\\1", escape(text))
