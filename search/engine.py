"""The search engine: one open index, its CLIP model and a reranker, answering queries.

How a query is answered (each step is a module of this package):
1. retrieve: embed the query with the index's own CLIP model, take the nearest vectors from
   FAISS; and find captions containing the query's words (SQLite FTS5, BM25);
2. fuse: reciprocal-rank fusion of the two rankings;
3. rerank: the top N go through OFA visual entailment, ordered by P(yes), ties by fusion;
4. cut off: hits judged "no" with P(no) >= the threshold are hidden (unless asked for),
   and when every reranked hit is rejected nothing is shown: "nothing matches".
Every hit carries an explanation of why it is there.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
from PIL import Image

from indexer.decode import DecodeError, decode_image
from indexer.embed import Embedder
from indexer.errors import IndexerError
from indexer.store import IndexStore, fs_path_of
from indexer.vector_index import VectorIndex, load_vector_index

from .filters import Filters, allowed_ids
from .fuse import reciprocal_rank_fusion
from .rerank import Judgement, Reranker
from .retrieve import caption_candidates, vector_candidates

DEFAULT_REJECT_THRESHOLD = 0.8
MIN_POOL = 50
SORTS = ("relevance", "date")


class EmptyQuery(IndexerError):
    """The query has no words."""


@dataclass
class Hit:
    """One search result and why it is there. `score` is P(yes) for reranked hits and the
    fusion score otherwise; results come in rank order."""

    id: int
    path: str
    caption: str
    score: float
    clip_score: float
    fused_score: float
    vector_rank: int | None
    caption_rank: int | None
    width: int | None = None
    height: int | None = None
    date: str | None = None  # date taken (EXIF), else the file's modification time
    verdict: str | None = None
    p_yes: float | None = None
    p_no: float | None = None
    p_maybe: float | None = None
    rejected: bool = False
    why: str = ""

    def as_dict(self) -> dict:
        """JSON-ready fields; rerank fields only when the hit was reranked."""
        data = asdict(self)
        if self.verdict is None:
            for key in ("verdict", "p_yes", "p_no", "p_maybe", "rejected"):
                data.pop(key)
        return data


@dataclass
class SearchResult:
    """The answer to one query. `rejected` counts reranked hits hidden by the cut-off."""

    query: str
    hits: list[Hit]
    reranked: bool
    rejected: int = 0
    notices: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """`{"query", "results", "reranked", "rejected", "notices"}`."""
        return {
            "query": self.query,
            "results": [hit.as_dict() for hit in self.hits],
            "reranked": self.reranked,
            "rejected": self.rejected,
            "notices": self.notices,
        }


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
            raise IndexerError(f"index {index_dir} is empty; run `indexer build PHOTOS` first")
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
        query and the cut-off kept) newest first instead of by relevance.
        """
        query = " ".join(query.split())
        if not query:
            raise EmptyQuery("the query is empty; say what the photos should show")
        if sort not in SORTS:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}")
        notices: list[str] = []
        query_vector = self.embedder.embed_texts([query])[0]
        pool = max(MIN_POOL, 5 * max(k, rerank_top))
        allowed = allowed_ids(self.store, filters)
        vector_hits = vector_candidates(self.vectors(notices), query_vector, pool, allowed)
        caption_hits = caption_candidates(self.store, query, pool, filters)
        fused = reciprocal_rank_fusion(
            {"vector": [i for i, _ in vector_hits], "caption": [i for i, _ in caption_hits]}
        )
        clip_scores = dict(vector_hits)
        hits = [
            self._hit(image_id, score, ranks, clip_scores, query_vector)
            for image_id, score, ranks in fused[: max(k, rerank_top if rerank else 0)]
        ]
        hits = [hit for hit in hits if hit is not None]
        if not rerank or not hits:
            for hit in hits:
                hit.why = explain(hit)
            return SearchResult(query, sort_hits(hits[:k], sort), reranked=False, notices=notices)
        shown, rejected = self._rerank(query, hits, rerank_top, show_rejected, reject_threshold)
        return SearchResult(query, sort_hits(shown[:k], sort), reranked=True, rejected=rejected,
                            notices=notices)  # fmt: skip

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
            blob = self.store.db.execute("SELECT vector FROM images WHERE id = ?", [image_id])
            row = blob.fetchone()
            if row is None:
                raise IndexerError(f"no photo with id {image_id} in the index")
            query_vector, label = np.frombuffer(row[0], dtype=np.float32), f"like #{image_id}"
        elif picture is not None:
            query_vector = self.embedder.embed_images([picture.convert("RGB")])[0]
            label = "like the uploaded picture"
        else:
            raise ValueError("give an image id or a picture")
        allowed = allowed_ids(self.store, filters)
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
            stored = self.store.db.execute("SELECT vector FROM images WHERE id = ?", [image_id])
            blob = stored.fetchone()[0]
            clip_score = float(np.frombuffer(blob, dtype=np.float32) @ query_vector)
        return Hit(
            id=image_id, path=fs_path_of(row), caption=row["caption"] or "",
            score=fused_score, clip_score=clip_score, fused_score=fused_score,
            vector_rank=ranks.get("vector"), caption_rank=ranks.get("caption"),
            width=row["width"], height=row["height"], date=row["date"],
        )  # fmt: skip

    def _rerank(self, query, hits, rerank_top, show_rejected, threshold):
        judged, rest = hits[:rerank_top], hits[rerank_top:]
        pictures, readable = [], []
        for hit in judged:
            try:
                pictures.append(decode_image(hit.path).image)
                readable.append(hit)
            except (DecodeError, OSError):
                hit.why = explain(hit, note="file could not be read for reranking")
        for hit, judgement in zip(readable, self.reranker.judge(pictures, query), strict=True):
            apply_judgement(hit, judgement, threshold)
        return order_and_cut(judged, rest, show_rejected)


def sort_hits(hits: list[Hit], sort: str) -> list[Hit]:
    """Hits in relevance order as given, or newest first for `sort="date"` (stable)."""
    if sort == "date":
        return sorted(hits, key=lambda hit: hit.date or "", reverse=True)
    return hits


def apply_judgement(hit: Hit, judgement: Judgement, threshold: float) -> None:
    """Record the reranker's verdict on a hit, and whether it is rejected."""
    hit.verdict, hit.p_yes = judgement.verdict, judgement.p_yes
    hit.p_no, hit.p_maybe = judgement.p_no, judgement.p_maybe
    hit.score = judgement.p_yes
    hit.rejected = judgement.verdict == "no" and judgement.p_no >= threshold
    hit.why = explain(hit)


def order_and_cut(judged: list[Hit], rest: list[Hit], show_rejected: bool) -> tuple[list, int]:
    """Reranked hits by P(yes) (ties by fusion score), then the unjudged rest in fusion order.

    Rejected hits are dropped unless `show_rejected`; when no judged hit is accepted the
    unjudged rest is dropped too, since it ranked below all of them. Returns (hits, rejected).
    """
    judged = sorted(judged, key=lambda h: (-(h.p_yes if h.p_yes is not None else -1),
                                           -h.fused_score))  # fmt: skip
    rejected = sum(hit.rejected for hit in judged)
    accepted = [hit for hit in judged if not hit.rejected]
    for hit in rest:
        hit.why = explain(hit)
    tail = rest if accepted else []
    return (judged if show_rejected else accepted) + tail, rejected


def explain(hit: Hit, note: str | None = None) -> str:
    """Why a hit is there, in one line."""
    parts = [f"caption: {hit.caption!r}"]
    if hit.vector_rank:
        parts.append(f"CLIP rank {hit.vector_rank} (similarity {hit.clip_score:.3f})")
    else:
        parts.append(f"not in CLIP's nearest (similarity {hit.clip_score:.3f})")
    if hit.caption_rank:
        parts.append(f"caption words rank {hit.caption_rank}")
    if hit.verdict is not None:
        verdict = (f"entailment {hit.verdict} (P(yes) {hit.p_yes:.2f}, P(no) {hit.p_no:.2f}, "
                   f"P(maybe) {hit.p_maybe:.2f})")  # fmt: skip
        parts.append(verdict + (", rejected" if hit.rejected else ""))
    elif note:
        parts.append(note)
    else:
        parts.append("not reranked")
    return "; ".join(parts)


def _clip(spec: str, device: str) -> Embedder:
    from indexer.embed import ClipEmbedder

    return ClipEmbedder(spec, device)
