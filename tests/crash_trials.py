"""Kill `indexer build` with SIGKILL at random moments and check what the next run finds.

Each trial: a fresh folder of generated photos (some with text in them), a build killed
after a seeded random delay, once a seeded random number of photos is committed, or during
its text pass (once a seeded random number of photos is marked read, a moment later), then
`indexer status` (must be consistent, the text table in step with the rows) and a second
build (must finish, redo no committed photo and read again no photo marked read). The test
suite runs a few trials; for many, run:

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
TEXT_PHOTOS = 4  # of PHOTOS, with text drawn in them (testing/text_photos.py)
MODES = ("photos", "time", "text")


def _query(index: Path, sql: str) -> int:
    try:
        with sqlite3.connect(f"file:{index / 'index.db'}?mode=ro", uri=True, timeout=5) as db:
            return db.execute(sql).fetchone()[0]
    except sqlite3.Error:
        return 0


def committed(index: Path) -> int:
    """Photos committed so far (0 before the database exists)."""
    return _query(index, "SELECT count(*) FROM images")


def text_read(index: Path) -> int:
    """Photos marked read by a text reader so far."""
    return _query(index, "SELECT count(ocr_model) FROM images")


def write_trial_photos(folder: Path, seed: int) -> None:
    """PHOTOS distinct JPEGs, TEXT_PHOTOS of them with signs (small: the trials stay quick)."""
    from testing.text_photos import TEXT_PHOTOS as SIGNS
    from testing.text_photos import render

    write_photos(folder, PHOTOS - TEXT_PHOTOS, start=seed * 100)
    for n in range(TEXT_PHOTOS):
        sign = SIGNS[(seed + n) % len(SIGNS)]
        render(sign).resize((640, 480)).save(folder / f"sign_{seed}_{n}.jpg", quality=90)


def check_text_table(index: Path) -> dict:
    """The text pass's state, checked: the FTS table `photo_text` holds one row for each
    photo with text (its text squashed) and none other. Returns {"read", "with_text"}."""
    from indexer.store.text_table import squashed_sql

    with sqlite3.connect(index / "index.db") as db:
        with_text = {i for (i,) in db.execute(
            "SELECT id FROM images WHERE ocr_text IS NOT NULL AND ocr_text != ''")}  # fmt: skip
        rows = [rowid for (rowid,) in db.execute("SELECT rowid FROM photo_text")]
        unlike = db.execute(
            "SELECT count(*) FROM images JOIN photo_text ON photo_text.rowid = images.id "
            f"WHERE photo_text.squashed IS NOT {squashed_sql('images.ocr_text')}"
        ).fetchone()[0]
        read = db.execute("SELECT count(ocr_model) FROM images").fetchone()[0]
        unread_with_text = db.execute(
            "SELECT count(*) FROM images WHERE ocr_model IS NULL AND ocr_text IS NOT NULL"
        ).fetchone()[0]
    assert len(rows) == len(set(rows)), "photo_text holds a photo twice"
    assert set(rows) == with_text, (sorted(rows), sorted(with_text))
    assert unlike == 0, f"{unlike} photo_text rows differ from their photo's text"
    assert unread_with_text == 0, "text stored without its reader's marker"
    return {"read": read, "with_text": len(with_text)}


def status(env: dict) -> dict:
    done = subprocess.run([sys.executable, "-m", "indexer.cli", "status", "--json"], env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def indexer(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "indexer.cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def run_trial(seed: int, workdir: Path, env: dict, mode: str | None = None) -> dict:
    """One kill-and-rerun trial; returns what happened, raises AssertionError on a fault.
    `mode` (MODES) is when to kill: a random one of them when None."""
    rng = random.Random(seed)
    photos, index = workdir / f"photos_{seed}", workdir / f"index_{seed}"
    write_trial_photos(photos, seed)
    env = dict(env, INDEXER_HOME=str(index))
    env.pop("INDEXER_OCR", None)  # the default build: it reads text
    build = ["build", str(photos), "--batch-size", str(rng.choice([1, 2, 3]))]
    process = indexer(build, env)
    target = rng.randrange(0, PHOTOS)
    chosen = rng.random()
    mode = mode or ("time" if chosen < 0.3 else "text" if chosen < 0.6 else "photos")
    delay = rng.uniform(0.5, 8.0) if mode == "time" else rng.uniform(0.0, 1.5)
    started, reached = time.monotonic(), None
    while process.poll() is None:
        elapsed = time.monotonic() - started
        if mode == "time" and elapsed >= delay:
            break
        if mode == "photos" and committed(index) >= target:
            break
        if mode == "text" and reached is None and committed(index) >= PHOTOS:
            # the CLIP pass is over: kill a moment after `target` photos are marked read
            reached = time.monotonic() if text_read(index) >= target else None
        if reached is not None and time.monotonic() - reached >= delay:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    kept = committed(index)

    report = status(env)
    assert report["vectors"] == report["indexed"] == kept, report
    text = report["passes"]["text"]
    read_before = check_text_table(index)["read"] if (index / "index.db").exists() else 0
    assert text["done"] == read_before and text["done"] + text["pending"] == kept, report

    rerun = indexer([*build, "--json"], env)
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    summary = json.loads(out)
    assert summary["model_calls"] == PHOTOS - kept, (summary, kept)
    assert summary["text_read"] == PHOTOS - read_before, (summary, read_before)
    final = status(env)
    assert final["indexed"] == final["vectors"] == PHOTOS, final
    table = check_text_table(index)
    assert table["read"] == PHOTOS and table["with_text"] >= 1, table  # the signs are read
    assert final["passes"]["text"] == {"done": PHOTOS, "with_text": table["with_text"],
                                       "pending": 0}, final  # fmt: skip
    with sqlite3.connect(index / "index.db") as db:
        paths = [row[0] for row in db.execute("SELECT path FROM images")]
    assert len(paths) == len(set(paths)) == PHOTOS
    how = {"time": f"after {delay:.1f} s", "photos": f"at {target} committed",
           "text": f"{delay:.1f} s after {target} read"}[mode]  # fmt: skip
    return {"seed": seed, "mode": mode, "killed": how, "committed_before_kill": kept,
            "read_before_kill": read_before, "redone": summary["model_calls"],
            "read_again": summary["text_read"],
            "with_text": final["passes"]["text"]["with_text"]}  # fmt: skip


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
