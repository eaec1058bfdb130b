"""Captioning through the real ModelScope pipeline, with and without the faster decoder."""

import modelscope
import pytest

from indexer.caption import OfaCaptioner
from indexer.ofa_speed import gate, incremental, speed_up_captioning
from testing.photos import scene


@pytest.fixture(scope="module")
def pictures():
    return [scene(seed, (160 + 16 * seed, 120)) for seed in range(7)]


@pytest.fixture(scope="module")
def plain(tiny_ofa_caption):
    return OfaCaptioner(tiny_ofa_caption, "cpu", batch_size=4, profile="plain")


@pytest.fixture(scope="module")
def one_by_one(plain, pictures):
    """The unmodified pipeline's captions, one picture per call."""
    return [plain.caption([picture])[0] for picture in pictures]


def never_fall_back(captioner, monkeypatch):
    """Make the patched generator fail loudly instead of quietly using ModelScope's loop."""

    def refuse(*args, **kwargs):
        raise AssertionError("the speed-up fell back to the unmodified generator")

    patch = vars(captioner._pipeline.model.generator)["generate"]
    monkeypatch.setattr(patch, "original_generate", refuse)


def test_exact_profile_gives_the_unmodified_pipelines_captions(
    tiny_ofa_caption, pictures, plain, one_by_one, monkeypatch
):
    exact = OfaCaptioner(tiny_ofa_caption, "cpu", batch_size=4, profile="exact")
    assert exact.profile == "exact" and exact.notice is None
    never_fall_back(exact, monkeypatch)
    assert exact.caption(pictures) == one_by_one  # batched, incremental: same words
    assert plain.caption(pictures) == one_by_one
    assert all(caption for caption in one_by_one)


def test_strict_profile_gives_the_unmodified_pipelines_captions(
    tiny_ofa_caption, pictures, plain, one_by_one, monkeypatch
):
    strict = OfaCaptioner(tiny_ofa_caption, "cpu", batch_size=4, profile="plain")
    speed_up_captioning(strict._pipeline, profile="strict")
    never_fall_back(strict, monkeypatch)
    assert strict.caption(pictures) == plain.caption(pictures)
    assert [strict.caption([picture])[0] for picture in pictures] == one_by_one


def test_fast_profile_captions_every_picture(tiny_ofa_caption, pictures):
    fast = OfaCaptioner(tiny_ofa_caption, "cpu", batch_size=3, profile="fast")
    captions = fast.caption(pictures)
    assert len(captions) == len(pictures) and all(isinstance(c, str) for c in captions)


def test_unknown_profile_is_refused(tiny_ofa_caption):
    with pytest.raises(ValueError, match="profile"):
        OfaCaptioner(tiny_ofa_caption, "cpu", profile="turbo")


def test_an_unchecked_modelscope_version_gets_the_plain_loop(
    tiny_ofa_caption, pictures, one_by_one, monkeypatch
):
    monkeypatch.setattr(modelscope, "__version__", "0.0.0")
    captioner = OfaCaptioner(tiny_ofa_caption, "cpu", batch_size=4, profile="exact")
    assert captioner.profile == "plain"
    assert "slower" in captioner.notice and "modelscope 0.0.0" in captioner.notice
    assert captioner.caption(pictures) == one_by_one


def missing_attribute(*args, **kwargs):
    raise AttributeError("'OFADecoderLayer' object has no attribute 'fc1'")


@pytest.mark.parametrize("where", ["structure", "self-check"])
def test_a_structure_the_gate_does_not_know_gets_the_plain_loop(
    tiny_ofa_caption, pictures, one_by_one, monkeypatch, where
):
    if where == "structure":  # as if this ModelScope's layers lacked an attribute
        monkeypatch.setattr(gate, "LAYER_ATTRIBUTES", (*gate.LAYER_ATTRIBUTES, "fc1_gone"))
    else:  # the attribute check passes, but the self-check meets the gap
        monkeypatch.setattr(incremental.IncrementalDecoder, "_layer", missing_attribute)
    captioner = OfaCaptioner(tiny_ofa_caption, "cpu", batch_size=4, profile="exact")
    assert captioner.profile == "plain" and "fc1" in captioner.notice
    assert "\n" not in captioner.notice
    assert "generate" not in vars(captioner._pipeline.model.generator)
    assert [captioner.caption([picture])[0] for picture in pictures[:2]] == one_by_one[:2]


def test_a_failure_while_captioning_falls_back_for_that_call(
    tiny_ofa_caption, pictures, one_by_one, monkeypatch
):
    exact = OfaCaptioner(tiny_ofa_caption, "cpu", batch_size=4, profile="exact")
    monkeypatch.setattr(incremental.IncrementalDecoder, "_layer", missing_attribute)
    assert exact.caption(pictures[:4]) == one_by_one[:4]  # one batch, as in the plain run
    assert exact.caption(pictures[:1]) == one_by_one[:1]


def test_the_exact_profile_counts_what_its_guard_redid(tiny_ofa_caption, pictures, plain):
    exact = OfaCaptioner(tiny_ofa_caption, "cpu", batch_size=4, profile="exact")
    assert exact.guard_counts() == (0, 0) and plain.guard_counts() is None
    exact.caption(pictures)
    seen, redone = exact.guard_counts()
    assert seen == len(pictures) and 0 <= redone <= seen
