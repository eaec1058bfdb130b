"""Every model path on learned weights: the shapes world (testing/world.py), its models
trained by the product's own `indexer finetune`, and a library of pictures they never saw,
driven through the CLI.

The model set is trained once per run (`world_models` in conftest.py). Each test prints
its figures (pytest -s shows them).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from testing.shapes import COLOURS, LABELS, SHAPES, text_of
from testing.world import absent_labels, rare_labels
from tests.world_cli import indexed_library, indexer, search

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def library(tmp_path_factory, world_models):
    """The library indexed with the trained captioner and CLIP: (truth, env)."""
    return indexed_library(tmp_path_factory.mktemp("world-library"), {
        "INDEXER_CAPTION_MODEL": world_models.captioner,
        "INDEXER_CLIP_MODEL": world_models.clip,
        "INDEXER_RERANK_MODEL": world_models.judge,
    })  # fmt: skip


def precision(result: dict, truth: dict, label: tuple[str, str]) -> float:
    """The share of the hits shown (at most five) that show `label`: hits the reranker
    hid count for nothing either way (0.0 when nothing is shown)."""
    hits = result["results"][:5]
    return sum(truth[Path(hit["path"])] == label for hit in hits) / len(hits) if hits else 0.0


def stored_captions(env: dict) -> dict[Path, str]:
    from indexer.store import IndexStore

    store = IndexStore.open(env["INDEXER_HOME"])
    try:
        return {Path(path): store.image_by_path(path)["caption"] for path in store.image_paths()}
    finally:
        store.close()


def test_the_trained_captioner_describes_unseen_pictures(library, world_models):
    truth, env = library
    captions = stored_captions(env)
    right = sum(captions[path] == text_of(*label) for path, label in truth.items())
    print(f"\ncaptions exactly right: {right}/{len(truth)}; held-out during training: "
          f"{world_models.caption_report['after']}")  # fmt: skip
    assert right >= 0.9 * len(truth)


def test_search_finds_what_is_there(library):
    truth, env = library
    present = sorted(set(truth.values()))
    found = {label: search(text_of(*label), env) for label in present}
    precisions = {text_of(*label): precision(found[label], truth, label) for label in present}
    print(f"\nprecision@5 with rerank: {precisions}")
    assert sum(precisions.values()) / len(precisions) >= 0.8
    assert all(result["results"] for result in found.values())  # never "nothing matches"


def test_rerank_raises_precision_where_look_alikes_surround_the_few(library):
    """The rare labels have two pictures each among a dozen of the same colour and a dozen
    of the same shape: without the judge, five hits hold at most two right ones."""
    truth, env = library
    rare = rare_labels()
    plain = {text_of(*label): precision(search(text_of(*label), env, "--no-rerank"), truth, label)
             for label in rare}  # fmt: skip
    judged = {text_of(*label): precision(search(text_of(*label), env), truth, label)
              for label in rare}  # fmt: skip
    print(f"\nlook-alike queries, precision of the hits shown: --no-rerank {plain}, "
          f"reranked {judged}")  # fmt: skip
    assert sum(judged.values()) > sum(plain.values())
    assert sum(judged.values()) / len(judged) >= 0.8


def test_a_word_only_the_captions_carry_lifts_photos(library):
    """The world's CLIP never saw the word "triangle" (its texts say "wedge"); the trained
    captions say "triangle", and fusion brings those photos up."""
    truth, env = library
    hits = search("triangle", env, "--no-rerank", "-k", str(len(truth)))["results"]
    by_vector = sorted(hits, key=lambda hit: hit["vector_rank"] or len(truth) + 1)
    fused_right = sum(truth[Path(hit["path"])][1] == "triangle" for hit in hits[:5])
    vector_right = sum(truth[Path(hit["path"])][1] == "triangle" for hit in by_vector[:5])
    lifted = [hit["vector_rank"] for hit in hits[:5] if hit["vector_rank"] > 5]
    print(f"\n'triangle': {fused_right}/5 right in the fused top 5, {vector_right}/5 by CLIP "
          f"alone; lifted from CLIP ranks {lifted}")  # fmt: skip
    assert fused_right == 5 and vector_right < fused_right and lifted


def test_absent_concepts_find_nothing(library):
    _, env = library
    shown = {text_of(*label): search(text_of(*label), env)["results"] for label in absent_labels()}
    print(f"\nabsent concepts, hits shown: { {q: len(hits) for q, hits in shown.items()} }")
    assert sum(not hits for hits in shown.values()) >= 0.9 * len(shown)


def test_audit_says_no_to_planted_wrong_descriptions(library, tmp_path):
    truth, env = library
    pairs = tmp_path / "pairs.csv"
    planted = {}
    with open(pairs, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "text"])
        for n, (path, (colour, shape)) in enumerate(sorted(truth.items())):
            other_colour = sorted(c for c in COLOURS if c != colour)[n % 3]
            other_shape = sorted(s for s in SHAPES if s != shape)[n % 2]
            wrong = text_of(other_colour, shape) if n % 2 else text_of(colour, other_shape)
            for text, expected in ((text_of(colour, shape), "yes"), (wrong, "no")):
                writer.writerow([str(path), text])
                planted[(str(path), text)] = expected
    report = tmp_path / "report.csv"
    indexer("audit", str(pairs), "-o", str(report), env=env)
    with open(report, newline="") as handle:
        verdicts = {(row["path"], row["text"]): row["verdict"] for row in csv.DictReader(handle)}
    for expected in ("yes", "no"):
        asked = [key for key, want in planted.items() if want == expected]
        agreed = sum(verdicts[key] == expected for key in asked)
        print(f"\naudit: {agreed}/{len(asked)} of the {expected!r} descriptions judged {expected}")
        assert agreed >= 0.9 * len(asked)


def test_tags_put_the_right_colour_on_the_photos(library):
    truth, env = library
    indexer("tag", "--labels", ",".join(COLOURS), env=env)
    from indexer.store import IndexStore

    store = IndexStore.open(env["INDEXER_HOME"])
    try:
        tagged = {colour: {Path(row["path"]) for row in store.tagged_images([colour])}
                  for colour in COLOURS}  # fmt: skip
    finally:
        store.close()
    right = sum(path in tagged[colour] for path, (colour, _) in truth.items())
    wrong = sum(path in tagged[other] for path, (colour, _) in truth.items()
                for other in COLOURS if other != colour)  # fmt: skip
    print(f"\ntags: right colour on {right}/{len(truth)} photos, {wrong} wrong colour tags")
    assert right >= 0.9 * len(truth)
    assert wrong <= 0.1 * len(truth)


def test_labels_cover_the_world():
    assert len(LABELS) == len(COLOURS) * len(SHAPES)
    assert set(absent_labels()) < set(LABELS)


def test_exact_profile_is_token_identical_on_learned_weights(world_models, library):
    """Trained captions end at EOS at their natural lengths ("a pink circle" is two tokens
    longer than "a red circle"): the exact profile, batched, must end each where the
    unmodified pipeline does, one picture at a time."""
    from indexer.caption import OfaCaptioner
    from indexer.decode import decode_image

    truth, _ = library
    paths = sorted(truth)[:12]  # every colour, pink included: lengths differ in each batch
    pictures = [decode_image(str(path)).image for path in paths]
    plain = OfaCaptioner(world_models.captioner, "cpu", batch_size=6, profile="plain")
    one_by_one = [plain.caption([picture])[0] for picture in pictures]
    exact = OfaCaptioner(world_models.captioner, "cpu", batch_size=6, profile="exact")
    assert exact.caption(pictures) == one_by_one
    tokenizer = plain._pipeline.model.tokenizer
    lengths = {len(tokenizer.tokenize(" " + caption)) for caption in one_by_one}
    assert len(lengths) >= 2, one_by_one
    fast = OfaCaptioner(world_models.captioner, "cpu", batch_size=6, profile="fast")
    agree = sum(a == b for a, b in zip(fast.caption(pictures), one_by_one, strict=True))
    seen, redone = exact.guard_counts()
    print(f"\n--fast agrees on {agree}/{len(pictures)} captions; the exact profile's guard "
          f"redid {redone} of {seen}")  # fmt: skip
    assert agree >= 0.8 * len(pictures)
