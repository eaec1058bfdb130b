"""What every view of the page shares: the open index with its models (one per server), and
showing an indexed photo by id.

Kept apart from ui/app.py because Streamlit runs app.py as the script `__main__`: a view in
another module that imported these from `ui.app` would get a second copy of the module, with
its own cache, and load the models twice.
"""

from __future__ import annotations

import os
import re
import shlex
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st

from indexer.config import Settings, load_settings
from indexer.errors import IndexerError
from indexer.lock import build_running
from indexer.progress import Progress
from indexer.store import DB_NAME, IndexStore
from indexer.thumbnails import ThumbnailError, thumbnail
from search.engine import SearchEngine, empty_index_message

MakeEngine = Callable[[Settings, bool], SearchEngine]


@dataclass
class Library:
    """One open index shared by every session of the server: the engine, whose models load
    once, and a lock, since its database connection and models serve one thread at a time."""

    engine: SearchEngine
    lock: threading.RLock = field(default_factory=threading.RLock)
    reranker_ready: bool = False
    folders: tuple[tuple[int, int], list[str]] | None = None  # (version, count), folders


@st.cache_resource(show_spinner="Loading the CLIP model (once per server)…")
def _open_library(key: str, _settings: Settings, _make_engine: MakeEngine) -> Library:
    """The engine for one index and models; `key` names the settings and `_make_engine`."""
    engine = _make_engine(_settings, True)
    try:
        _ = engine.embedder  # load CLIP now, under the spinner
    except BaseException:
        engine.close()
        raise
    return Library(engine)


def open_index(make_engine: MakeEngine) -> Library | None:
    """The shared library for the configured index, or None after saying why there is none."""
    try:
        settings = load_settings()
    except ValueError as error:
        st.error(str(error))
        return None
    index_dir = Path(settings.index_dir)
    holder = build_running(index_dir)
    if holder and not (index_dir / DB_NAME).is_file():
        st.info(empty_index_message(index_dir))
        return None
    if not (index_dir / DB_NAME).is_file():
        st.info(f"No index yet in `{index_dir}`. Build one from a folder of photos with:")
        st.code(f"indexer build ~/Pictures --index {shlex.quote(str(index_dir))}", language="bash")
        return None
    try:
        store = IndexStore.open(index_dir)
        try:  # an index rebuilt with another CLIP model needs a new engine
            clip_model = store.models()["clip_model"]
        finally:
            store.close()
        key = f"{settings!r} {clip_model} {make_engine.__module__}.{make_engine.__qualname__}"
        return _open_library(key, settings, make_engine)
    except IndexerError as error:  # empty, damaged, CLIP model not available...
        st.error(str(error))
        return None


def load_reranker(library: Library) -> None:
    """Load the reranker on the first search or audit that asks for it, with a spinner."""
    if not library.reranker_ready:
        with library.lock, st.spinner("Loading the reranker (once per server)…"):
            _ = library.engine.reranker
            library.reranker_ready = True


def index_version(library: Library) -> tuple[int, int]:
    """(vectors version, photo count): changes when a build adds, changes or removes photos."""
    store = library.engine.store
    with library.lock:
        return store.vectors_version(), store.count_images()


def index_folders(library: Library) -> list[str]:
    """The folders of the indexed photos and their parents down to the common root, which
    comes first."""
    store = library.engine.store
    version = index_version(library)
    if library.folders and library.folders[0] == version:
        return library.folders[1]
    with library.lock:
        parents = {os.path.dirname(path) for path in store.image_paths()}
    folders = set()
    root = os.path.commonpath(parents) if parents else ""
    for parent in parents:
        while len(parent) > len(root):
            folders.add(parent)
            parent = os.path.dirname(parent)
    library.folders = version, sorted(folders | ({root} if root else set()))
    return library.folders[1]


def progress_bar(label: str) -> tuple[Callable[[Progress], None], Callable[[], None]]:
    """A progress bar for a library function's `on_progress`, and a function that removes it."""
    bar = st.progress(0.0, text=label)

    def on_progress(progress: Progress) -> None:
        share = progress.done / progress.total if progress.total else 1.0
        bar.progress(min(share, 1.0), text=f"{label} {progress.done} of {progress.total}")

    return on_progress, bar.empty


def escape(text: str) -> str:
    """Text shown literally inside Markdown (captions and paths are not Markdown)."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~:$])", r"\\\1", text)


def show_picture(library: Library, image_id: int, size: int) -> None:
    """A cached thumbnail of an indexed photo, by id."""
    try:
        with library.lock:
            path = thumbnail(library.engine.store, image_id, size)
    except ThumbnailError as error:
        st.caption(f"Picture unavailable: {escape(str(error))}")
        return
    st.image(str(path), width="stretch")


def file_size(size: int) -> str:
    if size < 1000:
        return f"{size} bytes"
    return f"{size / 1e3:.0f} KB" if size < 1_000_000 else f"{size / 1e6:.1f} MB"
