"""`python -m bench`: what indexing and searching cost on this machine.

python -m bench                      # random-weight models of the real sizes, 24 photos
python -m bench --size tiny --photos 8 --loop-photos 4 --vectors 1000   # a quick check
python -m bench --skip indexing,queries,world,rerank,early,sweep --command-parts default,no_ocr
                                     # what reading text costs a build (48 photos)
python -m bench --caption-model DIR --clip-model local-dir:DIR   # real weights (adds
                                     # the caption agreement of the fast profile)
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

DEFAULT_WORLD_CACHE = Path(__file__).resolve().parent.parent / "data" / "world" / "models"

# as the `indexer` command does (indexer/cli.py): before torch loads
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["tiny", "base"], default="base",
                        help="random-weight model size when no model is given (default base: "
                        "the real architectures' dimensions)")  # fmt: skip
    parser.add_argument("--caption-model", help="an OFA caption model (id or folder)")
    parser.add_argument("--clip-model", help="an open_clip spec")
    parser.add_argument("--rerank-model", help="an OFA visual-entailment model (id or folder)")
    parser.add_argument("--photos", type=int, default=24, help="photos for the pipeline run")
    parser.add_argument("--loop-photos", type=int, default=8,
                        help="photos for the straightforward loop (it is slow)")  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="decode worker processes")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--vectors", default="1000,100000,1000000",
                        help="library sizes for the FAISS sweep (comma-separated)")  # fmt: skip
    parser.add_argument("--skip", default="",
                        help="parts to skip: indexing,queries,world,rerank,commands,early,"
                        "sweep")  # fmt: skip
    parser.add_argument("--command-photos", type=int, default=48,
                        help="photos for the whole-command builds (4 of them 12 MP)")  # fmt: skip
    parser.add_argument("--command-parts", default="",
                        help="which whole-command parts to run (default all): loop,default,"
                        "no_ocr,captions_now,fast,start_up,search")  # fmt: skip
    parser.add_argument("--early-photos", type=int, default=200,
                        help="photos for the time-until-searchable build")  # fmt: skip
    parser.add_argument("--world-cache", default=str(DEFAULT_WORLD_CACHE),
                        help="where the shapes world's trained models are kept (trained "
                        "there on the first run, a few minutes)")  # fmt: skip
    parser.add_argument("--json", dest="json_out", help="also write the results to this file")
    return parser.parse_args()


def model_specs(options, workdir: Path) -> dict[str, str]:
    """The models to measure: the ones given, or random-weight folders of the chosen size."""
    from testing.models import make_clip_folder, make_ofa_folder

    return {
        "clip": options.clip_model or make_clip_folder(workdir / "clip", size=options.size),
        "caption": options.caption_model
        or make_ofa_folder(workdir / "caption", task="caption", size=options.size),
        "rerank": options.rerank_model
        or make_ofa_folder(workdir / "entailment", task="entailment", size=options.size),
    }


def main() -> None:
    import logging

    from .report import run_all

    # before the models' imports: fairseq would set the root logger to DEBUG/INFO
    logging.basicConfig(level=logging.WARNING)
    options = parse_args()
    os.environ.setdefault("INDEXER_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        workdir = Path(folder)
        results, text = run_all(options, model_specs(options, workdir), workdir)
    print(text)
    if options.json_out:
        Path(options.json_out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
