"""A multilingual CLIP (the layout of open_clip's xlm-roberta-base-ViT-B-32: a Hugging Face
XLM-R text tower) loads from a folder that carries its tokenizer, with no hub, builds an
index and answers a Chinese query."""

import shutil

import numpy as np
import pytest

from indexer.build import build_index
from indexer.embed import ClipEmbedder
from indexer.errors import ModelUnavailable
from indexer.models import ModelSet
from search.engine import SearchEngine
from testing.multilingual import (
    make_multilingual_clip_folder,
    make_nllb_clip_folder,
    make_siglip_i18n_folder,
)
from testing.photos import write_photos
from tests.fakes import FakeCaptioner

# builds models or indexes, runs the CLI or a server: seconds to minutes
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def xlmr_clip(tmp_path_factory) -> str:
    return make_multilingual_clip_folder(tmp_path_factory.mktemp("xlmr") / "clip")


@pytest.fixture
def no_hub(monkeypatch, tmp_path):
    for name, value in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                        "HF_HOME": str(tmp_path / "empty-hf-home")}.items():  # fmt: skip
        monkeypatch.setenv(name, value)


def test_the_folder_loads_offline_and_reads_chinese_and_english(xlmr_clip, no_hub):
    embedder = ClipEmbedder(xlmr_clip, device="cpu")
    vectors = embedder.embed_texts(["红色的圆形", "a red circle", "蓝色的正方形"])
    assert vectors.shape == (3, embedder.dim) == (3, 32)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(vectors[0], vectors[2], atol=1e-3)  # two sentences, two vectors
    ids = embedder.tokenizer(["红色的圆形"])[0].tolist()
    unknown = embedder.tokenizer.tokenizer.unk_token_id
    assert ids.count(unknown) == 0  # the folder's own pieces, not the hub's
    again = ClipEmbedder(xlmr_clip, device="cpu").embed_texts(["红色的圆形"])
    assert np.allclose(again[0], vectors[0], atol=1e-6)  # the folder's weights, not a new draw


def test_a_folder_without_its_tokenizer_says_so_in_one_line(xlmr_clip, no_hub, tmp_path):
    folder = tmp_path / "no-tokenizer"
    shutil.copytree(xlmr_clip.removeprefix("local-dir:"), folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (folder / name).unlink(missing_ok=True)
    with pytest.raises(ModelUnavailable) as caught:
        ClipEmbedder(f"local-dir:{folder}", device="cpu")
    message = str(caught.value)
    assert "\n" not in message and "tokenizer" in message and "'xlm-roberta-base'" in message


def test_an_index_built_with_it_answers_a_chinese_query(xlmr_clip, no_hub, tmp_path):
    write_photos(tmp_path / "photos", 4)
    embedder, captioner = ClipEmbedder(xlmr_clip, device="cpu"), FakeCaptioner()
    models = ModelSet("fake-captioner", xlmr_clip, lambda: captioner, lambda: embedder,
                      captioner, embedder)  # fmt: skip
    build_index([tmp_path / "photos"], tmp_path / "index", models, read_text=None)
    engine = SearchEngine(tmp_path / "index", load_embedder=lambda spec: embedder)
    result = engine.search("红色的圆形", k=3, rerank=False)
    engine.close()
    assert len(result.hits) == 3 and all(hit.vector_rank for hit in result.hits)


@pytest.mark.parametrize("make", [make_nllb_clip_folder, make_siglip_i18n_folder],
                         ids=["nllb-clip-base-siglip", "ViT-B-16-SigLIP-i18n-256"])  # fmt: skip
def test_the_other_multilingual_layouts_load_with_their_own_tokenizers(make, no_hub, tmp_path):
    """NLLB-CLIP (an NLLB encoder tower) and SigLIP i18n (open_clip's own tower over a
    multilingual sentencepiece vocabulary) read Chinese with the folder's tokenizer, and
    say which tokenizer is missing when it is."""
    spec = make(tmp_path / "clip")
    embedder = ClipEmbedder(spec, device="cpu")
    ids = embedder.tokenizer(["红色的圆形"])[0].tolist()
    assert embedder.tokenizer.tokenizer.unk_token_id not in ids  # the folder's pieces
    vectors = embedder.embed_texts(["红色的圆形", "a red circle"])
    assert vectors.shape == (2, 32) and not np.allclose(vectors[0], vectors[1], atol=1e-3)
    (tmp_path / "clip" / "tokenizer.json").unlink()
    with pytest.raises(ModelUnavailable) as caught:
        ClipEmbedder(spec, device="cpu")
    assert "\n" not in str(caught.value) and "tokenizer" in str(caught.value)


def test_a_hub_model_missing_offline_names_its_tokenizer(no_hub):
    with pytest.raises(ModelUnavailable) as caught:
        ClipEmbedder("xlm-roberta-base-ViT-B-32@laion5b_s13b_b90k", device="cpu")
    message = str(caught.value)
    assert "\n" not in message
    assert "tokenizer and text tower config of 'xlm-roberta-base'" in message
