"""The Search view's results: cards in a grid, and one photo's details with its scores.

Callbacks here change only the URL's non-widget states (`like=`, `photo=`; see ui/app.py).
Kept out of ui/app.py, which Streamlit runs as `__main__` (see ui/shared.py).
"""

from __future__ import annotations

import os

import streamlit as st

from indexer.store import fs_path_of
from indexer.thumbnails import DETAIL_SIZE, GRID_SIZE
from search.results import Hit, SearchResult
from ui.ask_view import ask_box
from ui.shared import Library, escape, file_size, show_picture
from ui.text_highlight import highlighted

COLUMNS = 4
VERDICT_COLOURS = {"yes": "green", "maybe": "orange", "no": "red"}


def leave(*names: str) -> None:
    """Drop non-widget states from the URL (a callback)."""
    for name in names:
        st.query_params.pop(name, None)


def more_like_this(image_id: int) -> None:
    leave("photo")
    st.query_params["like"] = str(image_id)


def open_photo(image_id: int) -> None:
    st.query_params["photo"] = str(image_id)


def badge(hit: Hit, similar: bool, judging: bool = False) -> str:
    """The verdict badge and score of a result card."""
    if similar:  # the score is CLIP image-to-image similarity
        return f":blue-badge[similar] similarity {hit.score:.3f}"
    if judging:
        return f":violet-badge[judging…] score {hit.score:.3f}"
    if hit.verdict is None:
        return f":gray-badge[not reranked] score {hit.score:.3f}"
    label = f"{hit.verdict} · rejected" if hit.rejected else hit.verdict
    return f":{VERDICT_COLOURS[hit.verdict]}-badge[{label}] score {hit.score:.3f}"


def nothing_matches(result: SearchResult) -> str:
    message = "Nothing matches."
    if result.rejected:
        plural = "s" if result.rejected != 1 else ""
        message += (
            f" The reranker rejected {result.rejected} candidate{plural}; "
            "turn on “Show rejected” to see them."
        )
    return message


def results_grid(library: Library, hits: list[Hit], similar: bool,
                 judging: set[int] | None = None, before: int = 0) -> None:  # fmt: skip
    """Thumbnails with verdict, score and caption, COLUMNS to a row. `judging`: the ids of
    the hits the reranker is judging, shown so, with buttons of their own (a key is used once
    a run). `before`: how many cards an earlier grid in this place showed in this run; those
    past `hits` are blanked, since a container that replaces another keeps its children."""
    rows = -(-max(len(hits), before) // COLUMNS)
    for start in range(0, rows * COLUMNS, COLUMNS):
        if start >= len(hits):
            st.empty()  # a row of earlier cards
            continue
        for place, column in enumerate(st.columns(COLUMNS), start=start):
            if place < len(hits):
                card(library, column, hits[place], similar, judging)
            elif place < before:
                column.empty()


def card(library: Library, column, hit: Hit, similar: bool, judging: set[int] | None) -> None:
    """One result: its picture, badge, caption and buttons (see `results_grid`)."""
    keys = "" if judging is None else "early-"
    with column.container(border=True):
        show_picture(library, hit.id, GRID_SIZE)
        st.markdown(badge(hit, similar, judging is not None and hit.id in judging))
        st.caption(escape(hit.caption) or "(no caption)")
        left, right = st.columns([2, 3])
        left.button("Details", key=f"{keys}details-{hit.id}", type="tertiary",
                    on_click=open_photo, args=(hit.id,))  # fmt: skip
        right.button("More like this", key=f"{keys}like-{hit.id}", type="tertiary",
                     on_click=more_like_this, args=(hit.id,))  # fmt: skip


def score_table(hit: Hit) -> str:
    rows = [("score", f"{hit.score:.3f}")]
    if hit.verdict is not None:
        verdict = (f"{hit.verdict}{' (rejected)' if hit.rejected else ''}: P(yes) {hit.p_yes:.3f}, "
                   f"P(no) {hit.p_no:.3f}, P(maybe) {hit.p_maybe:.3f}")  # fmt: skip
        rows.append(("entailment", verdict))
    rank = f", rank {hit.vector_rank}" if hit.vector_rank else ", not in CLIP's nearest"
    rows.append(("CLIP similarity", f"{hit.clip_score:.3f}{rank}"))
    rows.append(("caption words", f"rank {hit.caption_rank}" if hit.caption_rank else "no match"))
    rows.append(("text in the photo", f"rank {hit.text_rank}" if hit.text_rank else "no match"))
    rows.append(("fused score", f"{hit.fused_score:.4f}"))
    lines = [f"| {name} | {value} |" for name, value in rows]
    return "\n".join([lines[0], "| --- | --- |", *lines[1:]])


def photo_text(text: str, hit: Hit | None) -> None:
    """The text read in the photo, if any, with the words the query found in it marked."""
    if not text.strip():
        return
    terms = hit.text_terms if hit is not None else []
    with st.container(border=True, key="photo-text"):
        st.markdown("**Text in the photo**" + (" · query words marked" if terms else ""))
        st.markdown(highlighted(text, terms))


def detail_view(library: Library, photo_id: int, hits: list[Hit]) -> None:
    """One photo: larger picture, path, caption, the text in it, size, date, scores, why
    it matched, and a box to ask about it (ui/ask_view.py)."""
    st.button("← Back to the results", key="back", on_click=leave, args=("photo",))
    with library.lock:
        row = library.engine.store.image(photo_id)
    if row is None:
        st.error(f"no photo with id {photo_id} in the index")
        return
    path = fs_path_of(row)
    picture, facts = st.columns([3, 2])
    with picture:
        show_picture(library, photo_id, DETAIL_SIZE)
    with facts:
        st.subheader(escape(os.path.basename(path)))
        st.markdown(escape(row["caption"] or "(no caption)"))
        hit = next((h for h in hits if h.id == photo_id), None)
        # the row's text, so a photo opened without a search (or by similarity) shows it too
        photo_text((hit.text if hit is not None else "") or row["ocr_text"] or "", hit)
        st.code(path, language=None)
        source = "taken (EXIF)" if row["taken_at"] else "file time"
        when = (row["date"] or "unknown").replace("T", " ")
        st.markdown(
            f"{row['width']} × {row['height']} pixels · {file_size(row['size'])}  \n"
            f"{source}: {when}"
        )
        if hit is None:
            st.caption("Open this photo from a search to see its scores.")
        else:
            st.markdown(score_table(hit))
            st.markdown(f"**Why it matched:** {escape(hit.why)}")
        st.button("More like this", key="detail-like", on_click=more_like_this, args=(photo_id,))
        ask_box(library, photo_id)
