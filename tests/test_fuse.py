"""Fusion, cut-off and ordering on fixed inputs."""

import pytest

from search.engine import Hit, apply_judgement, explain, order_and_cut
from search.fuse import RRF_K, reciprocal_rank_fusion
from search.rerank import Judgement
from search.retrieve import caption_query


def test_rrf_adds_reciprocal_ranks_and_records_them():
    fused = reciprocal_rank_fusion({"vector": [1, 2, 3], "caption": [3, 4]})
    scores = {item: score for item, score, _ in fused}
    assert scores[3] == pytest.approx(1 / (RRF_K + 3) + 1 / (RRF_K + 1))
    assert scores[1] == pytest.approx(1 / (RRF_K + 1))
    assert [item for item, _, _ in fused] == [3, 1, 2, 4]
    assert dict((item, ranks) for item, _, ranks in fused)[3] == {"vector": 3, "caption": 1}


def test_rrf_ties_keep_first_met_order_and_duplicates_count_once():
    fused = reciprocal_rank_fusion({"a": [10, 20, 10], "b": [20, 10]})
    assert [item for item, _, _ in fused] == [10, 20]
    assert fused[0][1] == pytest.approx(fused[1][1])
    assert reciprocal_rank_fusion({"a": [], "b": []}) == []


def test_a_caption_match_lifts_a_photo_clip_ranks_low():
    vector = list(range(1, 31))  # photo 30 is CLIP's last choice...
    fused = reciprocal_rank_fusion({"vector": vector, "caption": [30]})
    assert [item for item, _, _ in fused][:2] == [30, 1]  # ...but its caption says "donuts"


def test_caption_query_drops_stopwords_and_quotes_words():
    assert caption_query("A photo of two DONUTS on the table") == '"two" OR "donuts" OR "table"'
    assert caption_query("the a of") is None
    assert caption_query('weird "quotes" OR NEAR(x)') == '"weird" OR "quotes" OR "near" OR "x"'


def hit(id_, fused):
    return Hit(id=id_, path=f"/p/{id_}.jpg", caption=f"caption {id_}", score=fused,
               clip_score=0.3, fused_score=fused, vector_rank=id_, caption_rank=None)  # fmt: skip


def judged(id_, fused, yes, no, maybe):
    h = hit(id_, fused)
    apply_judgement(h, Judgement(yes, no, maybe), threshold=0.8)
    return h


def test_order_is_by_p_yes_then_fusion_score():
    hits = [judged(1, 0.03, 0.2, 0.5, 0.3), judged(2, 0.02, 0.7, 0.1, 0.2),
            judged(3, 0.01, 0.7, 0.1, 0.2)]  # fmt: skip
    shown, rejected = order_and_cut(hits, [hit(4, 0.005)], show_rejected=False)
    assert [h.id for h in shown] == [2, 3, 1, 4]
    assert rejected == 0
    assert [h.score for h in shown[:3]] == [0.7, 0.7, 0.2]


def test_confident_no_is_hidden_unless_asked_for():
    hits = [judged(1, 0.03, 0.05, 0.9, 0.05), judged(2, 0.02, 0.6, 0.3, 0.1),
            judged(3, 0.01, 0.2, 0.7, 0.1)]  # a "no", but not confident enough  # fmt: skip
    shown, rejected = order_and_cut(hits, [], show_rejected=False)
    assert ([h.id for h in shown], rejected) == ([2, 3], 1)
    shown, _ = order_and_cut(hits, [], show_rejected=True)
    assert [h.id for h in shown] == [2, 3, 1] and shown[-1].rejected


def test_nothing_matches_when_every_judged_hit_is_rejected():
    hits = [judged(1, 0.03, 0.01, 0.95, 0.04), judged(2, 0.02, 0.02, 0.9, 0.08)]
    shown, rejected = order_and_cut(hits, [hit(3, 0.01)], show_rejected=False)
    assert (shown, rejected) == ([], 2)  # the unjudged rest ranked below them all


def test_explanations_name_caption_ranks_and_verdict():
    h = judged(4, 0.02, 0.1, 0.85, 0.05)
    assert h.verdict == "no" and h.rejected
    text = explain(h)
    for part in ("caption: 'caption 4'", "CLIP rank 4", "entailment no", "rejected"):
        assert part in text
    assert "not reranked" in explain(hit(5, 0.01))
