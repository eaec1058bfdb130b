"""Reciprocal-rank fusion of several rankings of the same items.

Each ranking contributes 1 / (K + rank) for every item it lists (rank 1 is best); an item's
fused score is the sum over the rankings that list it. K = 60 (Cormack et al., 2009) keeps a
first place in one ranking from swamping steady places in the others. Fusion needs only
ranks, so CLIP cosine similarities and BM25 scores, which live on different scales, combine
without tuning.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

RRF_K = 60


def reciprocal_rank_fusion(
    rankings: Mapping[str, Sequence[Hashable]], k: int = RRF_K
) -> list[tuple[Hashable, float, dict[str, int]]]:
    """Fuse named rankings (best first) into [(item, score, {ranking name: rank})], best first.

    Ties keep the order in which items were first met, going through the rankings in order.
    """
    scores: dict[Hashable, float] = {}
    ranks: dict[Hashable, dict[str, int]] = {}
    for name, ranking in rankings.items():
        for rank, item in enumerate(ranking, start=1):
            if name in ranks.get(item, {}):
                continue  # an item listed twice counts once, at its best rank
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
            ranks.setdefault(item, {})[name] = rank
    order = sorted(scores, key=lambda item: -scores[item])  # stable: ties keep first-met order
    return [(item, scores[item], ranks[item]) for item in order]
