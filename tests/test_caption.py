"""Captioning through the real ModelScope pipeline, with and without the faster decoder."""

import pytest

from indexer.caption import OfaCaptioner
from testing.photos import scene


@pytest.fixture(scope="module")
def pictures():
    return [scene(seed, (160 + 16 * seed, 120)) for seed in range(7)]


def test_exact_profile_gives_the_unmodified_pipelines_captions(tiny_ofa_caption, pictures):
    plain = OfaCaptioner(tiny_ofa_caption, "cpu", batch_size=4, profile="plain")
    exact = OfaCaptioner(tiny_ofa_caption, "cpu", batch_size=4, profile="exact")
    assert exact.profile == "exact" and exact.notice is None
    one_by_one = [plain.caption([picture])[0] for picture in pictures]
    assert exact.caption(pictures) == one_by_one  # batched, incremental: same words
    assert plain.caption(pictures) == one_by_one
    assert all(caption for caption in one_by_one)


def test_fast_profile_captions_every_picture(tiny_ofa_caption, pictures):
    fast = OfaCaptioner(tiny_ofa_caption, "cpu", batch_size=3, profile="fast")
    captions = fast.caption(pictures)
    assert len(captions) == len(pictures) and all(isinstance(c, str) for c in captions)


def test_unknown_profile_is_refused(tiny_ofa_caption):
    with pytest.raises(ValueError, match="profile"):
        OfaCaptioner(tiny_ofa_caption, "cpu", profile="turbo")
