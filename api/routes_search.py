"""Search and the indexed photos: GET /search, POST /search/image, GET /photos/{id},
GET /photos/{id}/thumbnail, GET /status, GET /health.

Photos are addressed by their id only: no endpoint opens a path taken from a request."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from indexer.errors import IndexerError
from search.filters import Filters
from search.results import sort_hits

from .state import Rejected

router = APIRouter()
THUMBNAIL_SIZES = (320, 1280)  # the page's grid and detail sizes, cached under the index
PhotoId = Annotated[int, "a photo id from a search result"]


def state_of(request: Request):
    return request.app.state.api


def filters_from(folder, taken_from, taken_to, orient, tag, has_text) -> Filters:
    """The page's URL filters as search Filters."""
    return Filters(folder=folder or None,
                   taken_from=taken_from.isoformat() if taken_from else None,
                   taken_to=taken_to.isoformat() if taken_to else None,
                   orientation=orient if orient and orient != "any" else None,
                   tags=tuple(tag or ()), has_text=has_text)  # fmt: skip


@router.get("/search", summary="Photos matching a query (the JSON of `indexer search --json`)")
def search(
    request: Request,
    q: Annotated[str, Query(max_length=500, description="what the photos should show")] = "",
    k: Annotated[int, Query(ge=1, le=200)] = 10,
    sort: Literal["relevance", "date"] = "relevance",
    rerank: bool = True,
    top: Annotated[int, Query(ge=1, le=100, description="how many hits to rerank")] = 10,
    rejected: bool = False,
    folder: str | None = None,
    taken_from: Annotated[date | None, Query(alias="from")] = None,
    taken_to: Annotated[date | None, Query(alias="to")] = None,
    orient: Literal["any", "landscape", "portrait", "square"] | None = None,
    tag: Annotated[list[str] | None, Query()] = None,
    has_text: bool = False,
    like: Annotated[int | None, Query(ge=0, description="photos like this photo id")] = None,
) -> dict:
    state = state_of(request)
    filters = filters_from(folder, taken_from, taken_to, orient, tag, has_text)
    if like is not None:
        with state.index_lock:
            result = state.engine().similar(image_id=like, k=k, filters=filters)
        result.hits = sort_hits(result.hits, sort)
        return result.as_dict()
    if not q.strip():
        raise ValueError("give a query (q=...) or a photo to search like (like=ID)")
    if rerank:
        with state.gate.turn():
            engine = state.judging_engine()
            result = engine.search(q, k=k, rerank=True, rerank_top=top, show_rejected=rejected,
                                   filters=filters, sort=sort)  # fmt: skip
        return result.as_dict()
    with state.index_lock:
        result = state.engine().search(q, k=k, rerank=False, filters=filters, sort=sort)
    return result.as_dict()


@router.post("/search/image", summary="Photos that look like an uploaded picture")
async def search_image(
    request: Request,
    image: Annotated[UploadFile, File(description="a picture")],
    k: Annotated[int, Query(ge=1, le=200)] = 10,
) -> dict:
    state = state_of(request)
    data = await image.read()

    def work() -> dict:
        picture = state.decode(data).image
        with state.gate.turn(), state.index_lock:
            return state.engine().similar(picture=picture, k=k).as_dict()

    return await run_in_threadpool(work)


@router.get("/photos/{photo_id}", summary="One indexed photo's record")
def photo(request: Request, photo_id: PhotoId) -> dict:
    state = state_of(request)
    with state.index_lock:
        store = state.engine().store
        row = store.image(photo_id)
        if row is None:
            raise IndexerError(f"no photo with id {photo_id} in the index")
        text = store.texts_of([photo_id]).get(photo_id, ("", "[]"))[0]
        tags = store.tags_of(photo_id)
    from indexer.store.rows import fs_path_of

    return {"id": row["id"], "path": fs_path_of(row), "caption": row["caption"] or "",
            "text": text or "", "width": row["width"], "height": row["height"],
            "date": row["date"], "tags": tags}  # fmt: skip


@router.get("/photos/{photo_id}/thumbnail", summary="A JPEG thumbnail of an indexed photo",
            response_class=FileResponse)  # fmt: skip
def photo_thumbnail(request: Request, photo_id: PhotoId,
                    size: Annotated[int, Query(description="320 or 1280")] = 320):  # fmt: skip
    from indexer.thumbnails import thumbnail

    if size not in THUMBNAIL_SIZES:
        raise Rejected(422, f"size: a thumbnail is {' or '.join(map(str, THUMBNAIL_SIZES))} px")
    state = state_of(request)
    with state.index_lock:
        path = thumbnail(state.engine().store, photo_id, size)
    return FileResponse(path, media_type="image/jpeg")


@router.get("/status", summary="The index, the models loaded and the model queue")
def status(request: Request) -> dict:
    from indexer.lock import build_running
    from indexer.status import index_status

    state = state_of(request)
    with state.index_lock:
        summary = index_status(state.settings.index_dir)
    summary.pop("failures", None)  # paths of files the server never shows otherwise
    gate = state.gate
    queue = {"waiting": gate.waiting, "limit": gate.limit, "refused": gate.refused}
    running = bool(build_running(state.settings.index_dir))
    return {**summary, "build_running": running, "models_loaded": state.loaded(), "queue": queue}


@router.get("/health", summary="Whether the server answers (no token needed)")
def health() -> dict:
    return {"ok": True}
