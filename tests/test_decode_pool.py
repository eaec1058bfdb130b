"""Decoding contained in worker processes: hangs, crashes and memory hogs become failures."""

import time

from indexer.decode import DecodedImage
from indexer.decode_pool import DecodeJob, DecodePool
from testing.photos import scene


def test_good_files_decode_and_bad_ones_fail_without_stopping_the_rest(tmp_path):
    names = ["a.jpg", "hang.jpg", "b.jpg", "crash.jpg", "hog.jpg", "c.jpg", "missing.jpg"]
    for name in names:
        if name != "missing.jpg":
            scene(len(name), (120, 80)).save(tmp_path / name)
    jobs = [DecodeJob(name, str(tmp_path / name)) for name in names]
    started = time.monotonic()
    with DecodePool(workers=2, timeout_s=3, memory_mb=1024,
                    decoder="tests.hostile_decoders:misbehaving") as pool:  # fmt: skip
        results = dict(pool.decode(jobs))
    assert time.monotonic() - started < 30
    assert set(results) == set(names)
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        assert isinstance(results[name], DecodedImage) and results[name].image.size == (120, 80)
    assert results["hang.jpg"] == "decoding took longer than 3 s"
    assert results["crash.jpg"] == "decoder crashed (signal 11)"
    assert "memory budget" in results["hog.jpg"]
    assert results["missing.jpg"].startswith("cannot read")


def test_real_decoder_errors_come_back_as_reasons(tmp_path):
    (tmp_path / "junk.jpg").write_bytes(b"junk" * 100)
    with DecodePool(workers=1) as pool:
        ((key, reason),) = list(pool.decode([DecodeJob("junk", str(tmp_path / "junk.jpg"))]))
    assert (key, reason) == ("junk", "not an image Pillow recognises")


def test_workers_prepare_the_exact_clip_input(tmp_path, tiny_clip):
    import numpy as np

    from indexer.decode import decode_image
    from indexer.embed import ClipEmbedder

    embedder = ClipEmbedder(tiny_clip, "cpu")
    assert embedder.crop_size == 64
    for n, size in enumerate([(640, 480), (300, 900), (64, 64), (1001, 77)]):
        scene(n, size).save(tmp_path / f"{n}.png")
    jobs = [DecodeJob(n, str(tmp_path / f"{n}.png"), clip_size=64) for n in range(4)]
    with DecodePool(workers=2) as pool:
        decoded = dict(pool.decode(jobs))
    for n in range(4):
        whole = decode_image(str(tmp_path / f"{n}.png")).image
        prepared = decoded[n].clip_image
        assert prepared.size == (64, 64)
        assert np.array_equal(embedder.preprocess(prepared).numpy(),
                              embedder.preprocess(whole).numpy())  # fmt: skip
