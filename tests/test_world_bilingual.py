"""Search in Chinese on learned weights: the shapes world's library indexed with a bilingual
CLIP (a Hugging Face XLM-R text tower, the family of open_clip's xlm-roberta-base-ViT-B-32,
trained here in English and Chinese: testing/multilingual.py), the trained world captioner
(English captions) and the English judge, driven through the CLI.

A Chinese query finds what it asks for as well as the English one does, is not reranked
(the judge reads English) and says so; the English query is reranked as before."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from indexer.cli import main
from testing.multilingual import bilingual_clip, chinese_text_of
from testing.shapes import text_of
from tests.world_cli import indexed_library, search

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def library(tmp_path_factory, world_models, world_cache):
    """(truth, env) of the library indexed with the bilingual CLIP."""
    return indexed_library(tmp_path_factory.mktemp("bilingual-library"), {
        "INDEXER_CLIP_MODEL": bilingual_clip(world_cache),
        "INDEXER_CAPTION_MODEL": world_models.captioner,
        "INDEXER_RERANK_MODEL": world_models.judge, "INDEXER_OCR": "0",
    })  # fmt: skip


def found(result: dict, truth: dict, label: tuple[str, str]) -> float:
    """The share of the right photos among the five hits, out of what five hits can hold:
    the library has only two photos of a rare label, so 2 of 5 right is all of them."""
    hits = result["results"][:5]
    possible = min(5, sum(value == label for value in truth.values()))
    return sum(truth[Path(hit["path"])] == label for hit in hits) / possible


def test_a_chinese_query_finds_what_the_english_one_finds(library):
    truth, env = library
    labels = sorted(set(truth.values()))
    chinese = {label: search(chinese_text_of(*label), env) for label in labels}
    english = {label: search(text_of(*label), env, "--no-rerank") for label in labels}
    zh = {chinese_text_of(*label): found(chinese[label], truth, label) for label in labels}
    en = {text_of(*label): found(english[label], truth, label) for label in labels}
    print(f"\nright photos in the top 5, in Chinese (not reranked): {zh}\n"
          f"in English (--no-rerank): {en}")  # fmt: skip
    assert zh["红色的圆形"] >= 0.8
    assert sum(zh.values()) / len(zh) >= 0.8
    assert sum(zh.values()) >= sum(en.values()) - 0.5  # like the English query
    for result in chinese.values():
        assert result["results"] and not result["reranked"]  # never "nothing matches"
        assert any(notice.startswith("not reranked: the text is in Chinese")
                   for notice in result["notices"])  # fmt: skip


def test_an_english_query_is_reranked_as_before(library):
    truth, env = library
    result = search("a red circle", env)
    assert result["reranked"] and not result["notices"]
    shown = result["results"]
    assert shown and all(truth[Path(hit["path"])] == ("red", "circle") for hit in shown)


def test_the_cli_says_why_a_chinese_query_was_not_reranked(library):
    truth, env = library
    done = CliRunner().invoke(main, ["search", "红色的圆形", "-k", "3"], env=env)
    assert done.exit_code == 0, done.output
    assert "note: not reranked: the text is in Chinese" in done.stderr
    assert sum(path.name in done.stdout for path in truth) == 3  # three hits listed
