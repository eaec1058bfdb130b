"""`python -m bench.loop PHOTOS --caption-model M --clip-model C`: the straightforward loop
as a command of its own, imports and model loading included, as the seed ran it: open each
photo in full, caption it with ModelScope's pipeline, embed it with CLIP, one at a time.
`python -m bench` times it against `indexer build` (bench/commands.py)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the `indexer` command sets it


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loop", description=__doc__)
    parser.add_argument("photos")
    parser.add_argument("--caption-model", required=True)
    parser.add_argument("--clip-model", required=True)
    options = parser.parse_args()
    from PIL import Image

    from indexer.caption import OfaCaptioner
    from indexer.embed import ClipEmbedder

    captioner = OfaCaptioner(options.caption_model, "cpu", 1, profile="plain")
    embedder = ClipEmbedder(options.clip_model, "cpu", precision="fp32")
    for path in sorted(Path(options.photos).glob("*.jpg")):
        with Image.open(path) as opened:
            picture = opened.convert("RGB")
        captioner.caption([picture])
        embedder.embed_images([picture])


if __name__ == "__main__":
    main()
