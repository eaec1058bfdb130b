"""The shapes world's library driven through the CLI in this process: shared by the tests
that index it with one model set or another (tests/test_world.py, test_world_bilingual.py)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from indexer.cli import main
from testing.world import write_library


def indexer(*args: str, env: dict) -> str:
    """Run an `indexer` command in this process; its standard output."""
    done = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    assert done.exit_code == 0, done.output
    return done.stdout


def search(query: str, env: dict, *options: str) -> dict:
    """`indexer search QUERY -k 5 --json OPTIONS`, parsed."""
    return json.loads(indexer("search", query, "-k", "5", "--json", *options, env=env))


def indexed_library(root: Path, models: dict[str, str]) -> tuple[dict, dict]:
    """The world's library written under `root` and indexed with `models` (INDEXER_* names:
    values); (truth: path -> (colour, shape), the environment of its index)."""
    truth = write_library(root / "photos")
    env = {"INDEXER_HOME": str(root / "index"), "INDEXER_DEVICE": "cpu",
           "INDEXER_OFFLINE": "1", **models}  # fmt: skip
    indexer("build", str(root / "photos"), env=env)
    return truth, env
