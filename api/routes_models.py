"""The models as services: POST /caption, /entail, /entail/batch, /audit and
/photos/{id}/ask. Every model call waits its turn at the model gate (503 when the queue is
full); pictures are uploads, decoded the build's safe way, or indexed photos by id."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, StreamingResponse

from indexer.errors import IndexerError
from search.language import unreadable

from .routes_search import state_of
from .state import Rejected

router = APIRouter()
MAX_TEXT = 1000  # characters of a text to judge or a question
MAX_BATCH = 64  # pairs in one /entail/batch request


@router.post("/caption", summary="An OFA caption of an uploaded picture (not indexed)")
async def caption(request: Request, image: Annotated[UploadFile, File()]) -> dict:
    state = state_of(request)
    data = await image.read()

    def work() -> dict:
        picture = state.decode(data).image
        with state.gate.turn():
            captioner = state.captioner()
            text = captioner.caption([picture])[0]
        return {"caption": text, "model": captioner.name}

    return await run_in_threadpool(work)


@router.post("/entail", summary="Does the uploaded picture show the text? yes / no / maybe")
async def entail(request: Request, image: Annotated[UploadFile, File()],
                 text: Annotated[str, Form(max_length=MAX_TEXT)]) -> dict:  # fmt: skip
    state = state_of(request)
    data = await image.read()

    def work() -> dict:
        picture = state.decode(data).image
        return _judged(state, [picture], text)[0]

    return await run_in_threadpool(work)


def _judged(state, pictures: list, text: str) -> list[dict]:
    """The judge's answer for each picture and `text`; a text it cannot read is not judged
    (verdict null, with why), as in search and the audit."""
    text = " ".join(text.split())
    if not text:
        raise Rejected(400, "the text is empty")
    with state.gate.turn():
        judge = state.judge()
        why = unreadable(text, getattr(judge, "languages", ("en",)))
        if why:
            return [{"verdict": None, "p_yes": None, "p_no": None, "p_maybe": None,
                     "model": judge.name, "not_judged": why}] * len(pictures)  # fmt: skip
        judgements = judge.judge(pictures, text)
    return [{"verdict": j.verdict, "p_yes": j.p_yes, "p_no": j.p_no, "p_maybe": j.p_maybe,
             "model": judge.name} for j in judgements]  # fmt: skip


@router.post("/entail/batch", summary="Judge many (picture, text) pairs; NDJSON, as judged")
async def entail_batch(
    request: Request,
    images: Annotated[list[UploadFile], File(description="pictures")],
    texts: Annotated[list[str], Form(description="one text per picture")],
):
    """Pairs go by position: the n-th text with the n-th picture. The answer streams one
    JSON line per pair as it is judged (`index`, then the verdict fields, or `error` for a
    pair that cannot be judged), so a client sees progress; at most MAX_BATCH pairs and the
    request size limit per request: page larger catalogues over several requests."""
    if len(images) != len(texts):
        raise Rejected(400, f"{len(images)} pictures but {len(texts)} texts: give one "
                                  "text per picture")  # fmt: skip
    if len(images) > MAX_BATCH:
        raise Rejected(413, f"{len(images)} pairs; at most {MAX_BATCH} per request")
    state = state_of(request)
    uploads = [await image.read() for image in images]

    def lines() -> Iterator[str]:
        for index, (data, text) in enumerate(zip(uploads, texts, strict=True)):
            try:
                answer = _judged(state, [state.decode(data).image], text[:MAX_TEXT])[0]
            except IndexerError as error:  # this pair only: a bad picture, an empty text
                answer = {"error": " ".join(str(error).split())}
            yield json.dumps({"index": index, **answer}) + "\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@router.post("/audit", summary="The `indexer audit` report of a path,text CSV of indexed photos")
async def audit(request: Request, pairs: Annotated[UploadFile, File(description="path,text CSV")],
                base: Annotated[str, Form(description="folder of relative paths")] = "/",
                format: Literal["json", "csv"] = "json"):  # fmt: skip
    """Only indexed photos are judged: a row naming any other path gets the error "not in
    the index", so a CSV cannot make the server open other files."""
    from curate.audit import audit_pairs, parse_pairs, report_csv

    state = state_of(request)
    try:
        text = (await pairs.read()).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Rejected(400, "the CSV is not UTF-8 text") from None

    def work():
        rows = parse_pairs(text, base or "/", pairs.filename or "the CSV")
        with state.gate.turn(), state.index_lock:
            store = state.engine().store
            return audit_pairs(rows, state.judge(), store, only_indexed=True)

    report = await run_in_threadpool(work)
    if format == "csv":
        return PlainTextResponse(report_csv(report), media_type="text/csv")
    return report.as_dict()


@router.post("/photos/{photo_id}/ask", summary="Ask a question about an indexed photo (OFA VQA)")
def ask(request: Request, photo_id: int,
        question: Annotated[str, Form(max_length=MAX_TEXT)]) -> dict:  # fmt: skip
    from PIL import Image

    from indexer.thumbnails import DETAIL_SIZE, thumbnail

    state = state_of(request)
    with state.index_lock:  # the page asks about the same picture: the detail thumbnail
        path = thumbnail(state.engine().store, photo_id, DETAIL_SIZE)
    with Image.open(path) as opened:
        picture = opened.convert("RGB")
    with state.gate.turn():
        answerer = state.answerer()
        answer = answerer.answer(picture, question)
    return {"id": photo_id, "question": question, "answer": answer, "model": answerer.name}
