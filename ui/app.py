"""The search page: `indexer ui` (or `streamlit run ui/app.py`) over the index in $INDEXER_HOME.

Views: `views()` lists the app's pages (st.navigation, at the top): "Search" (this module),
"Duplicates" and "Audit" (ui/views_curation.py). A view is a function of the page's
`make_engine` that shows its page; `ui.shared.open_index()` gives every view the same shared
engine and models, and `ui.shared.show_picture()` shows an indexed photo by id.

Search layout: the sidebar holds search by example (an upload), the result settings and the
filters; the main column holds the query box, then the results grid or one photo's details.
A reranked text search shows the retrieved hits at once, the top ones marked "judging…",
then the reranker's order and verdicts in the same places (ui/search_answer.py).

The URL carries the search. Every setting is a widget bound to the query parameter named by
its key (`bind="query-params"`): q, k, sort, rerank, top, rejected, folder, from, to, orient,
tag (repeated: `tag=beach&tag=food`), has_text (`has_text=true`: only photos with text read
in them). A value a widget cannot take is ignored, and a default value is left out of the
URL. Two states are not widgets and go through st.query_params: `like=ID` (photos like that
one) and `photo=ID` (the detail view, which shows the text read in the photo with the words
the query found marked: ui/text_highlight.py). An uploaded example is not part of the URL.

Safety: photos are shown by index id only, through thumbnails made from the path in the
index row; the folder filter only offers the index's folders and is a condition on indexed
paths, the tag filter only the index's tags. Nothing a URL or a query says is ever opened as
a file.

Models load once per server (st.cache_resource). Test seam: `main(make_engine=...)` takes a
function (settings, rerank) -> SearchEngine in place of `search.cli.make_engine`, so tests
can run the page on fake or tiny models (AppTest.from_function); the engine's reranker is
also the one the Audit view uses.
"""

from __future__ import annotations

import os
import re
from datetime import date

import streamlit as st

from indexer.decode import content_hash
from search.engine import SORTS
from search.filters import ORIENTATIONS, Filters
from ui.results_view import detail_view, leave
from ui.search_answer import Request, answer, show_answer
from ui.shared import Library, MakeEngine, escape, index_folders, open_index
from ui.views_curation import audit_view, duplicates_view

BIND = "query-params"
DEFAULT_K, MAX_K = 12, 200
DEFAULT_TOP, MAX_TOP = 10, 100
EARLIEST, LATEST = date(1826, 1, 1), date(2199, 12, 31)
EXAMPLE_TYPES = ["jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff", "heic", "heif", "avif"]
TAG_HINT = 'No tags yet: tag the photos with `indexer tag --labels "beach,city,food"`.'


# --- what this run asks for -----------------------------------------------------------


def id_param(name: str) -> int | None:
    """A photo id from the URL; anything else is dropped with a warning."""
    value = st.query_params.get(name)
    if value is None:
        return None
    if re.fullmatch(r"\d{1,18}", value):
        return int(value)
    st.warning(f"Ignored the URL parameter {name}={escape(repr(value))}: not a photo id.")
    del st.query_params[name]
    return None


def controls(library: Library) -> Request:
    """The query box and the sidebar's settings and filters, bound to the URL."""
    query = st.text_input("What should the photos show?", key="q", bind=BIND,
                          placeholder="a dog running on the beach",
                          on_change=leave, args=("like", "photo"))  # fmt: skip
    with st.sidebar:
        st.subheader("Search by example")
        upload = st.file_uploader(
            "A photo to find similar ones",
            type=EXAMPLE_TYPES,
            key="example",
            on_change=leave,
            args=("like", "photo"),
        )
        st.subheader("Results")
        k = st.number_input("Number of results", 1, MAX_K, DEFAULT_K, key="k", bind=BIND)
        sort = st.segmented_control(
            "Sort",
            SORTS,
            default=SORTS[0],
            required=True,
            key="sort",
            bind=BIND,
            help="Date: newest first, among relevant hits.",
        )
        rerank = st.toggle("Rerank", True, key="rerank", bind=BIND,
                           help="Judge the top hits with OFA visual entailment.")  # fmt: skip
        top = st.number_input("How many to rerank", 1, MAX_TOP, DEFAULT_TOP, key="top",
                              bind=BIND, disabled=not rerank)  # fmt: skip
        rejected = st.toggle("Show rejected", False, key="rejected", bind=BIND,
                             help="Also show the hits the reranker judged a clear no.")  # fmt: skip
        st.subheader("Filters")
        folder = st.selectbox("Folder", ["", *index_folders(library)], key="folder", bind=BIND,
                              format_func=lambda f: f or "All folders")  # fmt: skip
        taken_from = st.date_input("Taken from", None, EARLIEST, LATEST, key="from", bind=BIND,
                                   format="YYYY-MM-DD")  # fmt: skip
        taken_to = st.date_input("Taken until", None, EARLIEST, LATEST, key="to", bind=BIND,
                                 format="YYYY-MM-DD")  # fmt: skip
        orientation = st.selectbox("Orientation", ["any", *ORIENTATIONS], key="orient", bind=BIND)
        tags = tag_filter(library)
        has_text = st.checkbox("Only photos with text", False, key="has_text", bind=BIND,
                               help="Photos in which the build read some text (signs, "
                               "labels, documents).")  # fmt: skip
        with library.lock:
            count = library.engine.store.count_images()
        st.caption(f"Index `{library.engine.store.index_dir}`: {count} photos.")
    filters = Filters(folder=folder or None,
                      taken_from=taken_from.isoformat() if taken_from else None,
                      taken_to=taken_to.isoformat() if taken_to else None,
                      orientation=None if orientation == "any" else orientation,
                      tags=tuple(tags), has_text=has_text)  # fmt: skip
    example = upload.getvalue() if upload is not None else None
    return Request(" ".join(query.split()), int(k), rerank, int(top), rejected, filters, sort,
                   like=id_param("like"), example=example,
                   example_key=content_hash(example) if example is not None else None)  # fmt: skip


def tag_filter(library: Library) -> list[str]:
    """A choice of the index's tags (photos must carry all chosen), bound to `tag=` in the URL;
    disabled, with how to make tags, when the index has none."""
    with library.lock:
        counts = library.engine.store.tag_counts()
    chosen = st.multiselect("Tags", list(counts), key="tag", bind=BIND, disabled=not counts,
                            placeholder="Any tags" if counts else "No tags yet",
                            help="Only photos that carry every chosen tag.")  # fmt: skip
    if not counts:
        st.caption(TAG_HINT)
    return chosen


# --- the Search view -----------------------------------------------------------------


def search_view(make_engine: MakeEngine) -> None:
    """The Search page."""
    library = open_index(make_engine)
    if library is None:
        return
    request = controls(library)
    photo = id_param("photo")
    if photo is not None:
        result = None if request.empty() else answer(library, request)
        detail_view(library, photo, result.hits if result else [])
    elif request.empty():
        st.caption("Type what the photos should show, or search by example in the sidebar.")
    else:
        show_answer(library, request)


# --- the app --------------------------------------------------------------------------


def views(make_engine: MakeEngine) -> list:
    """The app's pages; the first is the default one, at `/`."""

    def search() -> None:
        search_view(make_engine)

    search_page = st.Page(search, title="Search", icon=":material/search:", url_path="search",
                          default=True)  # fmt: skip

    def duplicates() -> None:
        duplicates_view(make_engine, details=search_page)

    def audit() -> None:
        audit_view(make_engine)

    return [
        search_page,
        st.Page(duplicates, title="Duplicates", icon=":material/content_copy:",
                url_path="duplicates"),
        st.Page(audit, title="Audit", icon=":material/fact_check:", url_path="audit"),
    ]  # fmt: skip


def main(make_engine: MakeEngine | None = None) -> None:
    """Run the app; `make_engine` replaces `search.cli.make_engine` (tests)."""
    from indexer.cli import quiet_model_logs
    from search.engine import make_engine as real_engine

    quiet_model_logs()
    st.set_page_config(page_title="Photo search", page_icon=":material/photo_library:",
                       layout="wide")  # fmt: skip
    banner = os.environ.get("INDEXER_BANNER", "").strip()
    if banner:  # e.g. `make demo`: say what this library is
        st.info(banner, icon=":material/science:")
    st.navigation(views(make_engine or real_engine), position="top").run()


if __name__ == "__main__":
    main()
