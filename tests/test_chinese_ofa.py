"""A Chinese OFA caption model (the layout of ModelScope's `damo/ofa_image-caption_muge_base_zh`:
`language: zh` and a WordPiece vocab.txt) loads from its folder through the real pipeline,
offline, writes Chinese captions, and an index built with it finds photos by a Chinese
substring of their captions. Random weights: the captions mean nothing, their form does."""

from __future__ import annotations

import json
import os
import re
import shutil

import pytest
from click.testing import CliRunner

from indexer.caption import OfaCaptioner
from indexer.cli import main
from indexer.errors import ModelUnavailable
from testing.models import make_ofa_folder
from testing.photos import write_photos

# builds models or indexes, runs the CLI or a server: seconds to minutes
pytestmark = pytest.mark.slow

CJK = re.compile(r"^[\u4e00-\u9fff]+$")


@pytest.fixture(scope="module")
def chinese_captioner(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("zh") / "ofa_image-caption_zh"
    return make_ofa_folder(folder, task="caption", size="tiny", seed=3, language="zh")


def test_the_folder_loads_and_captions_in_chinese(chinese_captioner):
    from PIL import Image

    pictures = [Image.new("RGB", (80, 60), colour) for colour in ("red", "navy", "khaki")]
    exact = OfaCaptioner(chinese_captioner, device="cpu")
    plain = OfaCaptioner(chinese_captioner, device="cpu", profile="plain")
    captions = exact.caption(pictures)
    assert exact.profile == "exact" and exact.notice is None  # the speed-up serves it too
    assert all(CJK.match(caption) for caption in captions), captions  # no spaces between
    assert captions == plain.caption(pictures)  # the same captions as ModelScope's own loop
    assert exact.caption(pictures[:1]) == captions[:1]


def test_a_folder_without_its_vocabulary_says_so_in_one_line(chinese_captioner, tmp_path):
    folder = tmp_path / "no-vocab"
    shutil.copytree(chinese_captioner, folder)
    (folder / "vocab.txt").unlink()
    with pytest.raises(ModelUnavailable) as caught:
        OfaCaptioner(str(folder), device="cpu")
    message = str(caught.value)
    assert "\n" not in message and "vocab.txt" in message and "tokenizer" in message


def indexer(*args: str, env: dict) -> str:
    done = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    assert done.exit_code == 0, done.output
    return done.stdout


def test_an_index_built_with_it_finds_photos_by_a_chinese_substring(
    chinese_captioner, tiny_clip, tmp_path
):
    write_photos(tmp_path / "photos", 4)
    env = {"INDEXER_HOME": str(tmp_path / "index"), "INDEXER_CAPTION_MODEL": chinese_captioner,
           "INDEXER_CLIP_MODEL": tiny_clip, "INDEXER_DEVICE": "cpu", "INDEXER_OFFLINE": "1",
           "INDEXER_OCR": "0"}  # fmt: skip
    indexer("build", str(tmp_path / "photos"), "--captions", "now", env=env)
    everything = json.loads(indexer("search", "photo", "-k", "4", "--json", "--no-rerank",
                                    env=env))["results"]  # fmt: skip
    captions = {hit["path"]: hit["caption"] for hit in everything}
    assert len(captions) == 4 and all(CJK.match(caption) for caption in captions.values())
    caption = sorted(captions.values())[0]
    part = caption[1:4]  # three characters from inside a caption, as a user would type them
    found = json.loads(indexer("search", part, "-k", "4", "--json", "--no-rerank", env=env))
    by_caption = [hit for hit in found["results"] if hit["caption_rank"]]
    assert by_caption and all(part in hit["caption"] for hit in by_caption)
    expected = sorted(path for path, text in captions.items() if part in text)
    assert sorted(hit["path"] for hit in by_caption) == expected
    assert all("caption" in hit["why"] for hit in by_caption)
    assert os.environ.get("HF_HUB_OFFLINE") == "1"  # nothing came from a hub
