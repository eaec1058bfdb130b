"""The Search view's answer: what a request asks for, its result (kept for the session until
the request or the index changes), and how the result is shown below the query box.

A reranked text search is shown in two steps, in the same places: the retrieved hits (CLIP +
caption words, fused) at once, with the top N marked "judging…", then the reranker's order,
verdicts and notices when it is done. In Streamlit a container that replaces another keeps
the old one's children it does not overwrite, so the second showing blanks every place the
first filled and it does not (`Shown`, `ui.results_view.results_grid`).

Kept out of ui/app.py, which Streamlit runs as `__main__` (see ui/shared.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from indexer.decode import DecodeError, decode_image
from indexer.errors import IndexerError, ModelUnavailable
from indexer.thumbnails import GRID_SIZE
from search.engine import SearchEngine, SearchResult, sort_hits
from search.filters import Filters
from ui.results_view import leave, nothing_matches, results_grid
from ui.shared import Library, escape, load_reranker, show_picture

KEPT = "search_answer"  # session state: {"answer": (request and index version, result)}


@dataclass(frozen=True)
class Request:
    """A search as the widgets, the URL and an upload ask for it."""

    query: str
    k: int
    rerank: bool
    top: int
    rejected: bool
    filters: Filters
    sort: str
    like: int | None = None
    example_key: str | None = None  # the upload's content hash
    example: bytes | None = field(default=None, compare=False, repr=False)

    def empty(self) -> bool:
        return not (self.query or self.like is not None or self.example is not None)

    def staged(self) -> bool:
        """A text search the reranker judges: shown before and after the judging."""
        return self.rerank and self.like is None and self.example is None


class Places(NamedTuple):
    """Where a result goes, one below the other: heading, notices, grid (or why none)."""

    head: DeltaGenerator
    notes: DeltaGenerator
    body: DeltaGenerator


class Shown(NamedTuple):
    """How many notices and cards a showing put in its places."""

    notes: int = 0
    cards: int = 0


NOTHING_SHOWN = Shown()


# --- answering ------------------------------------------------------------------------


def answer_key(library: Library, request: Request) -> tuple:
    with library.lock:
        return request, library.engine.store.vectors_version()


def memory() -> dict:
    """The session's kept answer. Changed in place, under the library's lock: a click stops
    the run (which can then no longer reach the session state) only at its next Streamlit
    call, and the run the click starts waits for the lock before it looks for an answer."""
    return st.session_state.setdefault(KEPT, {})


def kept(key: tuple) -> SearchResult | None:
    found = memory().get("answer")
    return found[1] if found is not None and found[0] == key else None


def answer(library: Library, request: Request) -> SearchResult | None:
    """The whole result at once, or None after showing why there is none."""
    key = answer_key(library, request)
    result, kept_answers = kept(key), memory()
    if result is not None:
        return result
    try:
        if request.staged():
            load_reranker(library)
        with st.spinner("Searching…"), library.lock:
            result = ask(library.engine, request)
            kept_answers["answer"] = key, result
    except (DecodeError, IndexerError) as error:
        failed(error, request)
        return None
    return result


def ask(engine: SearchEngine, request: Request) -> SearchResult:
    """Run the request: more like a photo, then like the upload, else the text query."""
    if request.like is None and request.example is None:
        return engine.search(request.query, k=request.k, rerank=request.rerank,
                             rerank_top=request.top, show_rejected=request.rejected,
                             filters=request.filters, sort=request.sort)  # fmt: skip
    if request.like is not None:
        result = engine.similar(image_id=request.like, k=request.k, filters=request.filters)
    else:
        picture = decode_image(request.example).image
        result = engine.similar(picture=picture, k=request.k, filters=request.filters)
    result.hits = sort_hits(result.hits, request.sort)
    return result


def failed(error: Exception, request: Request) -> None:
    """Why a request has no result."""
    if isinstance(error, DecodeError):
        st.warning(f"The uploaded file cannot be used: {escape(str(error))}.")
        return
    st.error(str(error))
    if isinstance(error, ModelUnavailable) and request.rerank:
        st.caption("Turn off “Rerank” in the sidebar to search without it.")


def show_answer(library: Library, request: Request) -> None:
    """The result of a search below the query box; a reranked text search first without its
    verdicts (see the module docstring)."""
    key = answer_key(library, request)
    if not request.staged() or kept(key) is not None:
        result = answer(library, request)
        if result is not None:
            show(library, request, result, Places(st.empty(), st.empty(), st.empty()))
        return
    try:
        with st.spinner("Searching…"), library.lock:
            found = library.engine.retrieve(request.query, request.k, request.top,
                                            request.filters)  # fmt: skip
    except IndexerError as error:
        failed(error, request)
        return
    places = Places(st.empty(), st.empty(), st.empty())
    first = SearchResult(found.query, sort_hits(found.hits[: request.k], request.sort),
                         reranked=False, notices=found.notices)  # fmt: skip
    if not found.hits:  # nothing to judge: what `engine.search` answers
        memory()["answer"] = key, first
        show(library, request, first, places)
        return
    judging, kept_answers = {hit.id for hit in found.hits[: request.top]}, memory()
    shown = show(library, request, first, places, judging=judging)
    try:
        if library.engine.cannot_judge(found.query) is None:  # else rerank says why at once
            load_reranker(library)
        with st.spinner(f"Judging the top {request.top} with the reranker…"), library.lock:
            result = library.engine.rerank(found, request.k, request.top, request.rejected,
                                           sort=request.sort)  # fmt: skip
            kept_answers["answer"] = key, result  # for the run a click during judging starts
    except IndexerError as error:
        with places.head.container():
            failed(error, request)
        places.notes.empty()
        places.body.empty()
        return
    show(library, request, result, places, before=shown)


# --- showing --------------------------------------------------------------------------


def heading(library: Library, request: Request, result: SearchResult, judging: bool) -> None:
    """What the results are: like a photo, like the upload, or for a query."""
    count = f"{len(result.hits)} photo{'s' if len(result.hits) != 1 else ''}"
    if request.like is not None:
        left, right = st.columns([1, 5])
        with left:
            show_picture(library, request.like, GRID_SIZE)
        right.markdown(f"**{count} like photo #{request.like}**")
        right.button("Back to the search", key="unlike", on_click=leave, args=("like",))
    elif request.example is not None:
        st.markdown(f"**{count} like the uploaded picture** (remove it in the sidebar to go back)")
    else:
        parts = [f"**{count} for “{escape(result.query)}”**"]
        if judging:
            parts.append(f"judging the top {request.top}…")
        if result.reranked:
            parts.append(f"the top {request.top} reranked")
        if result.rejected and not request.rejected:
            parts.append(f"{result.rejected} rejected by the reranker and hidden")
        st.markdown(" · ".join(parts))


def show(library: Library, request: Request, result: SearchResult, places: Places,
         judging: set[int] | None = None, before: Shown = NOTHING_SHOWN) -> Shown:  # fmt: skip
    """The result in its places; `judging`: the ids of the hits the reranker is judging;
    `before`: what an earlier showing in this run put there."""
    with places.head.container():
        heading(library, request, result, judging=bool(judging))
    if result.notices:
        with places.notes.container():
            for notice in result.notices:
                st.caption(f"Note: {escape(notice)}")
            for _ in range(before.notes - len(result.notices)):
                st.empty()  # Streamlit would keep an earlier notice here
    else:
        places.notes.empty()
    if result.hits:
        similar = request.like is not None or request.example is not None
        with places.body.container():
            results_grid(library, result.hits, similar, judging=judging, before=before.cards)
    else:
        places.body.info(nothing_matches(result))
    return Shown(len(result.notices), len(result.hits))
