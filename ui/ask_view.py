"""The detail view's "Ask about this photo": a question box answered by OFA visual question
answering (search/ask.py) on the photo shown.

The model is $INDEXER_VQA_MODEL (a ModelScope id or a model folder), else DEFAULT_VQA_MODEL;
it loads on the first question, once per server (st.cache_resource, as ui/shared.py loads
the engine), not when a photo opens. The picture asked about is the photo's detail
thumbnail, made by id from the index row (indexer/thumbnails.py): nothing the URL or the
question says is opened as a file. Kept out of ui/app.py, which Streamlit runs as
`__main__` (see ui/shared.py).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

import streamlit as st
from PIL import Image

from indexer.config import load_settings
from indexer.errors import IndexerError
from indexer.thumbnails import DETAIL_SIZE, thumbnail
from search.ask import (
    DEFAULT_VQA_MODEL,
    MAX_QUESTION_CHARS,
    OfaQuestionAnswerer,
    QuestionAnswerer,
    clean_question,
)
from ui.shared import Library, escape

VQA_MODEL_VAR = "INDEXER_VQA_MODEL"
ANSWERS = "ask-answers"  # session state: photo id -> (question, answer), the last one asked


@dataclass
class SharedAnswerer:
    """One question answerer for every session of the server, and the lock that lets one
    thread at a time use it."""

    answerer: QuestionAnswerer
    lock: threading.Lock = field(default_factory=threading.Lock)


@st.cache_resource(show_spinner="Loading the question-answering model (once per server)…")
def _load_answerer(spec: str, device: str, trust_remote_code: bool) -> SharedAnswerer:
    return SharedAnswerer(OfaQuestionAnswerer(spec, device, trust_remote_code))


def vqa_model() -> str:
    """The question-answering model the page uses: $INDEXER_VQA_MODEL, else the default."""
    return os.environ.get(VQA_MODEL_VAR, "").strip() or DEFAULT_VQA_MODEL


def question_answerer() -> SharedAnswerer:
    """The server's question answerer, loaded on first use; ModelUnavailable (one line) when
    the model cannot load, and the next question tries again."""
    settings = load_settings()  # the device and trust_remote_code the other models use
    return _load_answerer(vqa_model(), settings.device, settings.trust_remote_code)


def photo_picture(library: Library, photo_id: int) -> Image.Image:
    """The indexed photo `photo_id` as an RGB picture, read from its detail thumbnail."""
    with library.lock:
        path = thumbnail(library.engine.store, photo_id, DETAIL_SIZE)
    with Image.open(path) as opened:  # a JPEG the page wrote itself
        return opened.convert("RGB")


def ask(library: Library, photo_id: int, question: str) -> str:
    """The answer to `question` about the photo; ValueError for a question the model does
    not take (before any model loads), IndexerError when the model or the photo is not
    available."""
    question = clean_question(question)
    shared = question_answerer()
    picture = photo_picture(library, photo_id)
    with shared.lock, st.spinner("Looking at the photo…"):
        return shared.answerer.answer(picture, question)


def ask_box(library: Library, photo_id: int) -> None:
    """A question box and Ask button for the photo `photo_id`, and the last answer given."""
    with st.container(border=True, key="ask"):
        st.markdown("**Ask about this photo**")
        question = st.text_input("Question", key="ask-question", max_chars=MAX_QUESTION_CHARS,
                                 placeholder="What colour is the car?",
                                 label_visibility="collapsed")  # fmt: skip
        answers = st.session_state.setdefault(ANSWERS, {})
        if st.button("Ask", key="ask-button"):
            answers.pop(photo_id, None)  # an answer stays beside its own question only
            try:
                answers[photo_id] = clean_question(question), ask(library, photo_id, question)
            except ValueError as error:  # an empty or overly long question
                st.warning(str(error))
            except IndexerError as error:  # the model cannot load, the photo cannot be read
                st.error(str(error))
        if photo_id in answers:
            asked, answer = answers[photo_id]
            st.caption(escape(asked))
            st.markdown(f"**Answer:** {escape(answer) or '(no answer)'}")
