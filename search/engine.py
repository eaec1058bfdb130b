"""The search engine: one open index, its CLIP model and a reranker, answering queries.

How a query is answered (each step is a module of this package):
1. retrieve: embed the query with the index's own CLIP model, take the nearest vectors from
   FAISS; find captions containing the query's words (SQLite FTS5, BM25); and photos whose
   text (OCR) holds them (photo_text);
2. fuse: reciprocal-rank fusion of the three rankings;
3. rerank: the top N go through OFA visual entailment, ordered by P(yes), ties by fusion,
   but a hit whose text holds the query's words keeps its place (results.order_and_cut);
4. cut off: hits judged "no" with P(no) >= the threshold are hidden (unless asked for;
   never a text match); when every reranked hit is rejected: "nothing matches".
A query the reranker cannot read (search.language: OFA entailment reads English) skips 3
and 4, with a notice.
Every hit carries an explanation of why it is there.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace

from PIL import Image

from indexer.embed import Embedder
from indexer.errors import IndexerError
from indexer.lock import build_running
from indexer.store import IndexStore, fs_path_of
from indexer.vector_index import VectorIndex, load_vector_index

from .filters import Filters
from .fuse import reciprocal_rank_fusion
from .language import unreadable
from .photo_text import attach_text, cjk_caption_candidates, text_candidates
from .rerank import Reranker
from .reranker_input import reranker_picture
from .results import SORTS, Hit, SearchResult, apply_judgement, explain, order_and_cut, sort_hits
from .retrieve import caption_candidates, vector_candidates

DEFAULT_REJECT_THRESHOLD = 0.8
MIN_POOL = 50


class EmptyQuery(IndexerError):
    """The query has no words."""


def empty_index_message(index_dir: str | os.PathLike) -> str:
    """Why an index without photos cannot answer: a first build is still before its first
    batch, or no build ever ran."""
    holder = build_running(index_dir)
    if holder:
        return (
            f"a build of index {index_dir} is running ({holder}) and nothing is indexed "
            "yet; search again once its first photos are in (`indexer status` counts them)"
        )
    return f"index {index_dir} is empty; run `indexer build PHOTOS` first"


class SearchEngine:
    """Answers queries over the index in `index_dir`.

    `load_embedder(clip_spec)` and `load_reranker()` build the models on first use (tests
    pass fakes or tiny models); by default the index's recorded CLIP model is loaded, and a
    reranker is needed only when a search asks for reranking.
    """

    def __init__(
        self,
        index_dir: str | os.PathLike,
        load_embedder: Callable[[str], Embedder] | None = None,
        load_reranker: Callable[[], Reranker] | None = None,
        device: str = "auto",
    ) -> None:
        self.store = IndexStore.open(index_dir)
        self.clip_model = self.store.models()["clip_model"]
        if not self.clip_model or self.store.count_images() == 0:
            self.store.close()
            raise IndexerError(empty_index_message(index_dir))
        self._load_embedder = load_embedder or (lambda spec: _clip(spec, device))
        self._load_reranker = load_reranker
        self._embedder: Embedder | None = None
        self._reranker: Reranker | None = None
        self._vectors: VectorIndex | None = None
        self._vectors_version = -1

    def close(self) -> None:
        """Close the index database."""
        self.store.close()

    @property
    def embedder(self) -> Embedder:
        """The index's CLIP model, loaded once."""
        if self._embedder is None:
            self._embedder = self._load_embedder(self.clip_model)
        return self._embedder

    @property
    def embedder_loaded(self) -> bool:
        """Whether the CLIP model is loaded yet."""
        return self._embedder is not None

    @property
    def reranker(self) -> Reranker:
        """The reranker, loaded once."""
        if self._reranker is None:
            if self._load_reranker is None:
                raise IndexerError("no reranker was configured")
            self._reranker = self._load_reranker()
        return self._reranker

    def vectors(self, notices: list[str] | None = None) -> VectorIndex | None:
        """The FAISS index, reloaded when a build has committed new vectors since."""
        version = self.store.vectors_version()
        if version != self._vectors_version:
            self._vectors = load_vector_index(self.store)
            self._vectors_version = version
            if notices is not None and self._vectors and self._vectors.notice:
                notices.append(self._vectors.notice)
        return self._vectors

    def search(
        self,
        query: str,
        k: int = 10,
        rerank: bool = True,
        rerank_top: int = 10,
        show_rejected: bool = False,
        reject_threshold: float = DEFAULT_REJECT_THRESHOLD,
        filters: Filters | None = None,
        sort: str = "relevance",
    ) -> SearchResult:
        """Answer a text query with at most `k` hits (see the module docstring).

        `filters` restrict the candidates; `sort="date"` orders the relevant hits (those the
        query and the cut-off kept) newest first instead of by relevance. The same as
        `retrieve` then `rerank`, which a page calls apart to show the first at once.
        """
        if sort not in SORTS:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}")
        found = self.retrieve(query, k, rerank_top if rerank else 0, filters)
        if not rerank or not found.hits:
            return SearchResult(found.query, sort_hits(found.hits[:k], sort), reranked=False,
                                notices=found.notices)  # fmt: skip
        return self.rerank(found, k, rerank_top, show_rejected, reject_threshold, sort)

    def retrieve(
        self, query: str, k: int = 10, rerank_top: int = 0, filters: Filters | None = None
    ) -> SearchResult:
        """Steps 1 and 2 only: the first max(k, rerank_top) candidates in fusion order, not
        reranked. Fast: no picture is opened."""
        query = " ".join(query.split())
        if not query:
            raise EmptyQuery("the query is empty; say what the photos should show")
        notices: list[str] = []
        query_vector = self.embedder.embed_texts([query])[0]
        pool = max(MIN_POOL, 5 * max(k, rerank_top))
        allowed = self.store.ids_where(filters)
        vector_hits = vector_candidates(self.vectors(notices), query_vector, pool, allowed)
        caption_hits = caption_candidates(self.store, query, pool, filters)
        caption_hits += cjk_caption_candidates(self.store, query, pool, filters)
        text_hits = text_candidates(self.store, query, pool, filters)
        fused = reciprocal_rank_fusion({"vector": [i for i, _ in vector_hits],
                                        "caption": [i for i, _ in caption_hits],
                                        "text": [i for i, _, _ in text_hits]})  # fmt: skip
        clip_scores = dict(vector_hits)
        hits = [
            self._hit(image_id, score, ranks, clip_scores, query_vector)
            for image_id, score, ranks in fused[: max(k, rerank_top)]
        ]
        hits = [hit for hit in hits if hit is not None]
        attach_text(hits, self.store, {i: terms for i, _, terms in text_hits})
        for hit in hits:
            hit.why = explain(hit)
        waiting = self.store.count_pending_captions()
        if waiting:
            notices.append(
                f"{waiting} of {self.store.count_images()} photos still wait for captions; "
                "until `indexer build` has made them, CLIP alone finds those"
            )
        return SearchResult(query, hits, reranked=False, notices=notices)

    def rerank(
        self,
        found: SearchResult,
        k: int = 10,
        rerank_top: int = 10,
        show_rejected: bool = False,
        reject_threshold: float = DEFAULT_REJECT_THRESHOLD,
        sort: str = "relevance",
    ) -> SearchResult:
        """Steps 3 and 4 on what `retrieve` found: judge its top `rerank_top`, order and
        cut off, and keep at most `k`. `found` itself is left as it was."""
        if sort not in SORTS:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}")
        hits = [replace(hit) for hit in found.hits]
        why_not = self.cannot_judge(found.query)
        if why_not:  # its verdicts would be noise (search.language)
            notice = f"not reranked: {why_not}; the hits are in retrieval order"
            return SearchResult(found.query, sort_hits(hits[:k], sort), reranked=False,
                                notices=[*found.notices, notice])  # fmt: skip
        shown, rejected = self._rerank(found.query, hits, rerank_top, show_rejected,
                                       reject_threshold)  # fmt: skip
        notices = list(found.notices)
        if getattr(self.reranker, "notice", None):  # e.g. ModelScope's slower own scoring
            notices.append(self.reranker.notice)
        return SearchResult(found.query, sort_hits(shown[:k], sort), reranked=True,
                            rejected=rejected, notices=notices)  # fmt: skip

    def cannot_judge(self, query: str) -> str | None:
        """Why the reranker would not judge `query` (a language it does not read), or None.
        Rerankers that say no `languages` read English; so does one not loaded yet."""
        return unreadable(query, getattr(self._reranker, "languages", ("en",)))

    def similar(
        self,
        image_id: int | None = None,
        picture: Image.Image | None = None,
        k: int = 10,
        filters: Filters | None = None,
    ) -> SearchResult:
        """Photos that look like an indexed photo (`image_id`) or an uploaded `picture`:
        CLIP image-to-image similarity. The photo itself is not among the hits."""
        notices: list[str] = []
        if image_id is not None:
            query_vector, label = self.store.vector_of(image_id), f"like #{image_id}"
            if query_vector is None:
                raise IndexerError(f"no photo with id {image_id} in the index")
        elif picture is not None:
            query_vector = self.embedder.embed_images([picture.convert("RGB")])[0]
            label = "like the uploaded picture"
        else:
            raise ValueError("give an image id or a picture")
        allowed = self.store.ids_where(filters)
        found = vector_candidates(self.vectors(notices), query_vector, k + 1, allowed)
        found = [(i, score) for i, score in found if i != image_id][:k]
        hits = [self._hit(i, score, {"vector": rank}, dict(found), query_vector)
                for rank, (i, score) in enumerate(found, start=1)]  # fmt: skip
        hits = [hit for hit in hits if hit is not None]
        for hit in hits:
            hit.score = hit.clip_score
            hit.why = explain(hit)
        return SearchResult(label, hits, reranked=False, notices=notices)

    def _hit(self, image_id, fused_score, ranks, clip_scores, query_vector) -> Hit | None:
        row = self.store.image(image_id)
        if row is None:  # removed by a build since the vectors were loaded
            return None
        clip_score = clip_scores.get(image_id)
        if clip_score is None:
            clip_score = float(self.store.vector_of(image_id) @ query_vector)
        return Hit(
            id=image_id, path=fs_path_of(row), caption=row["caption"] or "",
            score=fused_score, clip_score=clip_score, fused_score=fused_score,
            vector_rank=ranks.get("vector"), caption_rank=ranks.get("caption"),
            text_rank=ranks.get("text"), width=row["width"], height=row["height"],
            date=row["date"],
        )  # fmt: skip

    def _rerank(self, query, hits, rerank_top, show_rejected, threshold):
        judged, rest = hits[:rerank_top], hits[rerank_top:]
        pictures, readable = [], []
        size = getattr(self.reranker, "input_size", None)
        for hit in judged:
            picture = reranker_picture(self.store, hit, size)
            if picture is None:
                hit.why = explain(hit, note="file could not be read for reranking")
            else:
                pictures.append(picture)
                readable.append(hit)
        for hit, judgement in zip(readable, self.reranker.judge(pictures, query), strict=True):
            apply_judgement(hit, judgement, threshold)
        return order_and_cut(judged, rest, show_rejected)


def _clip(spec: str, device: str) -> Embedder:
    from indexer.embed import ClipEmbedder

    return ClipEmbedder(spec, device)


def make_reranker(settings) -> Reranker:
    """The OFA visual-entailment reranker the settings name (by default the one for their
    device), loaded now."""
    from indexer.models import default_rerank_model

    from .rerank import OfaEntailmentReranker

    spec = settings.rerank_model or default_rerank_model(settings.device)
    return OfaEntailmentReranker(spec, settings.device,
                                 trust_remote_code=settings.trust_remote_code)  # fmt: skip


def make_engine(settings, rerank: bool = True) -> SearchEngine:
    """A SearchEngine over the settings' index, with the configured reranker (loaded on
    first use) when `rerank`."""
    return SearchEngine(settings.index_dir,
                        load_reranker=(lambda: make_reranker(settings)) if rerank else None,
                        device=settings.device)  # fmt: skip
