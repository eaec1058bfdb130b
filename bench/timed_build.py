"""`python -m bench.timed_build TIMES.json ARGS...`: the `indexer ARGS` command as a user
runs it, which also writes how long its build's later passes took to TIMES.json:
{"text_s": wall seconds of the text pass (OCR), "captions_s": of the captions pass,
"captioner_wait_s": of the first call for the captioner, which waits for its background load}
(a pass that did not run is left out). `python -m bench` times whole builds through it
(bench/commands.py) to show the text pass's share of a build."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the `indexer` command sets it


def _timed(times: dict, key: str, function):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            times[key] = round(times.get(key, 0.0) + time.perf_counter() - start, 2)

    return wrapper


def main() -> None:
    out, args = Path(sys.argv[1]), sys.argv[2:]
    from indexer import build

    times: dict[str, float] = {}
    build.text_pass = _timed(times, "text_s", build.text_pass)
    build.captions_pass = _timed(times, "captions_s", build.captions_pass)
    from indexer.models import ModelSet

    captioner = ModelSet.captioner

    def first_captioner(self):  # the captions pass's wait for its model (preloaded or not)
        if "captioner_wait_s" in times:
            return captioner(self)
        return _timed(times, "captioner_wait_s", captioner)(self)

    ModelSet.captioner = first_captioner
    from indexer.cli import main as indexer

    try:
        indexer(args, prog_name="indexer")
    finally:
        out.write_text(json.dumps(times))


if __name__ == "__main__":
    main()
