"""The page's curation views: "Duplicates" and "Audit" (see `ui.app.views`).

Each is a layout over the library function its command uses: `indexer duplicates` ->
`curate.duplicates.find_duplicates`, `indexer audit` -> `curate.audit.parse_pairs` and
`audit_pairs`; the downloads are what those commands write (`--json`, `report_csv`).

Safety, as on the Search view: pictures are thumbnails of indexed photos, by id; an
uploaded CSV may only name indexed photos (`audit_pairs(only_indexed=True)`: any other path
is reported, never opened), and its relative paths are taken from a folder of the index.
"""

from __future__ import annotations

import json
import os

import streamlit as st

from curate.audit import AuditReport, audit_pairs, parse_pairs, report_csv
from curate.duplicates import KINDS, DuplicateGroup, DuplicatesReport, Photo, find_duplicates
from indexer.decode import content_hash
from indexer.errors import IndexerError
from indexer.store import IndexStore
from indexer.thumbnails import GRID_SIZE
from ui.shared import (
    Library,
    MakeEngine,
    escape,
    file_size,
    index_folders,
    index_version,
    load_reranker,
    open_index,
    progress_bar,
    show_picture,
)

COLUMNS = 4
GROUPS_SHOWN = 20  # per kind at first; "Show more" adds as many again
KIND_TEXT = {
    "exact": ("Exact copies", "The same bytes.", "blue"),
    "near": ("Near-duplicates", "The same picture resized, recompressed or lightly edited.",
             "violet"),
    "burst": ("Bursts", "Different shots of one scene, taken seconds apart (a copy takes part "
              "through its keeper).", "orange"),
}  # fmt: skip
AUDIT_COLUMNS = {  # report field -> table heading
    "line": "line", "verdict": "verdict", "p_yes": "P(yes)", "p_no": "P(no)",
    "p_maybe": "P(maybe)", "path": "path", "text": "text", "caption": "stored caption",
    "error": "error",
}  # fmt: skip


# --- Duplicates -----------------------------------------------------------------------


def duplicates_json(report: DuplicatesReport) -> str:
    """The groups as `indexer duplicates --json` prints them."""
    return json.dumps(report.as_dict(), indent=2, ensure_ascii=False) + "\n"


def find_groups(library: Library) -> DuplicatesReport | None:
    """The index's duplicate groups (kept for the session until the index changes or "Look
    again" is pressed), or None after showing why there are none. The search runs on its own
    connection to the index, so searches in other sessions go on meanwhile."""
    key = (str(library.engine.store.index_dir), index_version(library))
    kept = st.session_state.get("duplicates")
    if kept is not None and kept[0] == key:
        return kept[1]
    on_progress, done = progress_bar("Comparing pictures:")
    try:
        store = IndexStore.open(library.engine.store.index_dir)
        try:
            report = find_duplicates(store, on_progress=on_progress)
        finally:
            store.close()
    except IndexerError as error:
        st.error(str(error))
        return None
    finally:
        done()
    st.session_state["duplicates"] = (key, report)
    return report


def look_again() -> None:
    st.session_state.pop("duplicates", None)


def show_more(kind: str) -> None:
    shown = st.session_state.get(f"shown-{kind}", GROUPS_SHOWN)
    st.session_state[f"shown-{kind}"] = shown + GROUPS_SHOWN


def member_card(library: Library, photo: Photo, keep: bool, root: str, details) -> None:
    """One photo of a group: thumbnail, keeper badge, path, size and date."""
    show_picture(library, photo.id, GRID_SIZE)
    with library.lock:
        row = library.engine.store.image(photo.id)
    shown = os.path.relpath(photo.path, root) if root else photo.path
    mark = ":green-badge[keep]" if keep else ":gray-badge[also]"
    st.markdown(f"{mark} {escape(shown)}", help=escape(photo.path))
    size = f" · {file_size(row['size'])}" if row and row["size"] is not None else ""
    when = (photo.date or "date unknown").replace("T", " ")
    st.caption(f"{photo.width} × {photo.height}{size} · {when}")
    st.page_link(details, label="Details", query_params={"photo": str(photo.id)})


def group_card(library: Library, group: DuplicateGroup, root: str, details) -> None:
    """A group: its kind, size and keeper, then its members, the keeper first."""
    colour = KIND_TEXT[group.kind][2]
    with st.container(border=True):
        st.markdown(f":{colour}-badge[{group.kind}] {len(group.members)} photos · keep "
                    f"**{escape(os.path.basename(group.keep.path))}**")  # fmt: skip
        members = group.members
        for start in range(0, len(members), COLUMNS):
            row = members[start : start + COLUMNS]
            for column, photo in zip(st.columns(COLUMNS), row, strict=False):
                with column:
                    member_card(library, photo, photo is group.keep, root, details)


def kind_section(library: Library, kind: str, groups: list[DuplicateGroup], root: str,
                 details) -> None:  # fmt: skip
    title, meaning, _ = KIND_TEXT[kind]
    st.subheader(f"{title} ({len(groups)})")
    st.caption(meaning)
    shown = st.session_state.get(f"shown-{kind}", GROUPS_SHOWN)
    for group in groups[:shown]:
        group_card(library, group, root, details)
    if len(groups) > shown:
        st.caption(f"{shown} of {len(groups)} groups shown; the JSON download has them all.")
        st.button("Show more", key=f"more-{kind}", on_click=show_more, args=(kind,))


def duplicates_view(make_engine: MakeEngine, details) -> None:
    """The Duplicates page: exact copies, near-duplicates and bursts, each group with its
    suggested keeper; `details` is the page that shows one photo (`?photo=ID`)."""
    library = open_index(make_engine)
    if library is None:
        return
    report = find_groups(library)
    if report is None:
        return
    counts = ", ".join(f"{n} {kind}" for kind, n in report.counts().items())
    for notice in report.notices:
        st.caption(f"Note: {escape(notice)}")
    if not report.groups:
        st.info(f"No duplicates found among {report.photos} photos: no exact copies, "
                "near-duplicates or bursts.")  # fmt: skip
        st.button("Look again", key="look-again", on_click=look_again)
        return
    left, middle, right = st.columns([4, 2, 1], vertical_alignment="center")
    plural = "s" if len(report.groups) != 1 else ""
    left.markdown(f"**{len(report.groups)} group{plural}** ({counts}) among {report.photos} "
                  "photos. The suggested keeper, first in each group, has the largest "
                  "resolution, then the oldest date. Nothing is deleted.")  # fmt: skip
    middle.download_button("Download the groups (JSON)", duplicates_json(report),
                           file_name="duplicates.json", mime="application/json",
                           key="duplicates-json", on_click="ignore",
                           icon=":material/download:")  # fmt: skip
    right.button("Look again", key="look-again", on_click=look_again)
    folders = index_folders(library)
    root = folders[0] if folders else ""
    for kind in KINDS:
        groups = [group for group in report.groups if group.kind == kind]
        if groups:
            kind_section(library, kind, groups, root, details)


# --- Audit ----------------------------------------------------------------------------


def run_audit(library: Library, name: str, data: bytes, base: str) -> AuditReport | None:
    """The audit of an uploaded CSV (kept for the session until the upload, the folder for
    relative paths or the index changes), or None after showing why there is none."""
    key = (content_hash(data), base, index_version(library))
    kept = st.session_state.get("audit")
    if kept is not None and kept[0] == key:
        return kept[1]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        st.error(f"{name} is not UTF-8 text; save it as UTF-8 CSV")
        return None
    try:
        rows = parse_pairs(text, base, name)
        load_reranker(library)
    except IndexerError as error:  # a CSV that is not CSV, a reranker that cannot load
        st.error(str(error))
        return None
    on_progress, done = progress_bar("Judging rows:")
    try:
        with library.lock:
            report = audit_pairs(rows, library.engine.reranker, library.engine.store,
                                 on_progress, only_indexed=True)  # fmt: skip
    finally:
        done()
    st.session_state["audit"] = (key, report)
    return report


def audit_table(report: AuditReport) -> list[dict]:
    """The report's rows as the table shows them, in report order."""
    rows = []
    for row in report.rows:
        values = {heading: getattr(row, field) for field, heading in AUDIT_COLUMNS.items()}
        values["verdict"] = row.verdict or "error"
        values["stored caption"] = row.caption or ""
        values["error"] = row.error or ""
        rows.append(values)
    return rows


def show_audit(report: AuditReport, name: str) -> None:
    """The summary, the download and the table, worst first."""
    counts = report.summary()
    left, right = st.columns([4, 2], vertical_alignment="center")
    left.markdown(f"**{counts['rows']} rows**: {counts['yes']} yes, {counts['no']} no, "
                  f"{counts['maybe']} maybe, {counts['errors']} errors · judged by "
                  f"`{report.model}`")  # fmt: skip
    stem = os.path.splitext(os.path.basename(name))[0] or "pairs"
    right.download_button("Download the report (CSV)", report_csv(report),
                          file_name=f"{stem}-report.csv", mime="text/csv", key="audit-csv",
                          on_click="ignore", icon=":material/download:")  # fmt: skip
    for notice in report.notices:
        st.caption(f"Note: {escape(notice)}")
    probability = st.column_config.NumberColumn(format="%.2f", width="small")
    st.dataframe(audit_table(report), hide_index=True, key="audit-table",
                 column_config={"line": st.column_config.NumberColumn(width="small"),
                                "P(yes)": probability, "P(no)": probability,
                                "P(maybe)": probability})  # fmt: skip
    st.caption("Rows that could not be judged come first, then the judged rows, worst "
               "mismatch first (highest P(no), then lowest P(yes)).")  # fmt: skip


def audit_view(make_engine: MakeEngine) -> None:
    """The Audit page: does each picture support the text written for it?"""
    library = open_index(make_engine)
    if library is None:
        return
    st.markdown("Upload a CSV of `path,text` rows (a product description, an alt text, a "
                "caption for each photo); a header naming `path` and `text` is optional. "
                "Each photo is judged against its text by OFA visual entailment, beside its "
                "stored caption. Only photos in the index are read.")  # fmt: skip
    left, right = st.columns([3, 2])
    upload = left.file_uploader("Pairs (CSV)", type=["csv"], key="pairs")
    base = right.selectbox("Relative paths are taken from", index_folders(library),
                           key="audit-base")  # fmt: skip
    if upload is None:
        st.caption("Example row: `2023/beach/IMG_2231.jpg,Two dogs running on the beach`")
        return
    report = run_audit(library, upload.name, upload.getvalue(), base or "")
    if report is not None:
        show_audit(report, upload.name)
