"""What a search answers: hits with the reasons they are there, and how reranked hits are
ordered and cut off."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .rerank import Judgement

SORTS = ("relevance", "date")
SHOWN_LINES = 3  # lines of a photo's text quoted in an explanation


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
    text_rank: int | None = None  # rank among photos whose text holds the query's words
    text: str = ""  # all the text read in the photo (lines joined by newlines)
    text_lines: list[str] = field(default_factory=list)  # the lines that hold query words
    text_terms: list[str] = field(default_factory=list)  # the query words found in its text

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


def sort_hits(hits: list[Hit], sort: str) -> list[Hit]:
    """Hits in relevance order as given, or newest first for `sort="date"` (stable)."""
    if sort == "date":
        return sorted(hits, key=lambda hit: hit.date or "", reverse=True)
    return hits


def apply_judgement(hit: Hit, judgement: Judgement, threshold: float) -> None:
    """Record the reranker's verdict on a hit, and whether it is rejected (never a hit whose
    text holds the query's words: see order_and_cut)."""
    hit.verdict, hit.p_yes = judgement.verdict, judgement.p_yes
    hit.p_no, hit.p_maybe = judgement.p_no, judgement.p_maybe
    hit.score = judgement.p_yes
    no = judgement.verdict == "no" and judgement.p_no >= threshold
    hit.rejected = no and not hit.text_rank
    hit.why = explain(hit)


def held_by_text(hit: Hit) -> bool:
    """Whether the reranker leaves the hit where fusion put it: its text holds the query's
    words and the judge did not say "yes"."""
    return bool(hit.text_rank) and hit.verdict != "yes"


def order_and_cut(judged: list[Hit], rest: list[Hit], show_rejected: bool) -> tuple[list, int]:
    """Reranked hits by P(yes) (ties by fusion score), then the unjudged rest in fusion order.

    The entailment model judges what a picture shows; it cannot read, so "OPEN 24 HOURS"
    on a shop front is a "maybe" or a "no" to it. The rule: a hit whose text holds the
    query's words is never rejected, and unless judged "yes" (which may move it up) it keeps
    its place in fusion order while the other judged hits are ordered around it.
    Rejected hits are dropped unless `show_rejected`; when no judged hit is accepted the
    unjudged rest is dropped too, since it ranked below all of them. Returns (hits, rejected).
    """
    movable = iter(sorted((hit for hit in judged if not held_by_text(hit)),
                          key=lambda h: (-(h.p_yes if h.p_yes is not None else -1),
                                         -h.fused_score)))  # fmt: skip
    judged = [hit if held_by_text(hit) else next(movable) for hit in judged]
    rejected = sum(hit.rejected for hit in judged)
    accepted = [hit for hit in judged if not hit.rejected]
    for hit in rest:
        hit.why = explain(hit)
    tail = rest if accepted else []
    return (judged if show_rejected else accepted) + tail, rejected


def explain(hit: Hit, note: str | None = None) -> str:
    """Why a hit is there, in one line."""
    parts = [f"caption: {hit.caption!r}" if hit.caption else "no caption yet"]
    if hit.vector_rank:
        parts.append(f"CLIP rank {hit.vector_rank} (similarity {hit.clip_score:.3f})")
    else:
        parts.append(f"not in CLIP's nearest (similarity {hit.clip_score:.3f})")
    if hit.caption_rank:
        parts.append(f"caption words rank {hit.caption_rank}")
    if hit.text_rank:
        parts.append(f"text in photo: {quoted_lines(hit.text_lines)} (rank {hit.text_rank})")
    if hit.verdict is not None:
        verdict = (f"entailment {hit.verdict} (P(yes) {hit.p_yes:.2f}, P(no) {hit.p_no:.2f}, "
                   f"P(maybe) {hit.p_maybe:.2f})")  # fmt: skip
        kept = ", kept in place for its text" if held_by_text(hit) else ""
        parts.append(verdict + (", rejected" if hit.rejected else kept))
    elif note:
        parts.append(note)
    else:
        parts.append("not reranked")
    return "; ".join(parts)


def quoted_lines(lines: list[str]) -> str:
    """Lines of a photo's text for an explanation: quoted, at most SHOWN_LINES, long ones
    cut."""
    shown = [f'"{line[:60]}{"…" if len(line) > 60 else ""}"' for line in lines[:SHOWN_LINES]]
    more = f" (+{len(lines) - SHOWN_LINES} lines)" if len(lines) > SHOWN_LINES else ""
    return ", ".join(shown) + more
