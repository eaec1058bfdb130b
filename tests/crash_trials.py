"""Kill `indexer build` with SIGKILL at random moments and check what the next run finds.

Each trial: a fresh folder of generated photos, a build killed after a seeded random delay
or once a seeded random number of photos is committed, then `indexer status` (must be
consistent) and a second build (must finish and redo no committed photo). The test suite
runs a few trials; for many, run:

    .venv/bin/python -m tests.crash_trials --trials 50
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from testing.photos import write_photos

PHOTOS = 24


def committed(index: Path) -> int:
    """Photos committed so far (0 before the database exists)."""
    try:
        with sqlite3.connect(f"file:{index / 'index.db'}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT count(*) FROM images").fetchone()[0]
    except sqlite3.Error:
        return 0


def indexer(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "indexer.cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def run_trial(seed: int, workdir: Path, env: dict) -> dict:
    """One kill-and-rerun trial; returns what happened, raises AssertionError on a fault."""
    rng = random.Random(seed)
    photos, index = workdir / f"photos_{seed}", workdir / f"index_{seed}"
    write_photos(photos, PHOTOS, start=seed * 100)
    env = dict(env, INDEXER_HOME=str(index))
    build = ["build", str(photos), "--batch-size", str(rng.choice([1, 2, 3]))]
    process = indexer(build, env)
    target = rng.randrange(0, PHOTOS)
    by_time = rng.random() < 0.3
    delay = rng.uniform(0.5, 8.0)
    started = time.monotonic()
    while process.poll() is None:
        elapsed = time.monotonic() - started
        if (by_time and elapsed >= delay) or (not by_time and committed(index) >= target):
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    kept = committed(index)

    status = subprocess.run([sys.executable, "-m", "indexer.cli", "status", "--json"], env=env,
                            capture_output=True, text=True)  # fmt: skip
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["vectors"] == report["indexed"] == kept, report

    rerun = indexer([*build, "--json"], env)
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    summary = json.loads(out)
    assert summary["model_calls"] == PHOTOS - kept, (summary, kept)
    final = json.loads(subprocess.run([sys.executable, "-m", "indexer.cli", "status", "--json"],
                                      env=env, capture_output=True, text=True).stdout)  # fmt: skip
    assert final["indexed"] == final["vectors"] == PHOTOS, final
    with sqlite3.connect(index / "index.db") as db:
        paths = [row[0] for row in db.execute("SELECT path FROM images")]
    assert len(paths) == len(set(paths)) == PHOTOS
    how = f"after {delay:.1f} s" if by_time else f"at {target} committed"
    return {"seed": seed, "killed": how, "committed_before_kill": kept,
            "redone": summary["model_calls"]}  # fmt: skip


def model_env(workdir: Path) -> dict:
    """Environment with tiny random-weight models built in `workdir`."""
    from testing.models import make_clip_folder, make_ofa_folder

    env = dict(os.environ, INDEXER_OFFLINE="1", INDEXER_DEVICE="cpu")
    env["INDEXER_CLIP_MODEL"] = make_clip_folder(workdir / "clip", size="tiny")
    env["INDEXER_CAPTION_MODEL"] = make_ofa_folder(workdir / "caption", task="caption")
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        env = model_env(workdir)
        failures = 0
        for seed in range(options.seed, options.seed + options.trials):
            try:
                print(json.dumps(run_trial(seed, workdir, env)), flush=True)
            except AssertionError as error:
                failures += 1
                print(json.dumps({"seed": seed, "fault": str(error)}), flush=True)
        print(f"{options.trials - failures} passed, {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
