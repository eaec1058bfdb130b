"""The text tower's short-query shortcut gives open_clip's own features."""

import numpy as np


def test_cut_tokens_give_the_full_passes_features(tiny_clip):
    import torch

    from indexer.embed import ClipEmbedder, _encode_text

    embedder = ClipEmbedder(tiny_clip, "cpu", precision="fp32")
    texts = ["a red circle", "two people at a table by the sea at night", "x"]
    tokens = embedder.tokenizer(texts)
    with torch.inference_mode():
        full = embedder.model.encode_text(tokens).numpy()
        cut = _encode_text(embedder.model, tokens).numpy()
    assert np.abs(full - cut).max() < 1e-5
