"""End-to-end: the `indexer` command on generated photos with tiny real models."""

import json
import os
import subprocess
import sys

import pytest

from indexer.lock import WriterLock
from testing.photos import scene, write_hostile_files, write_photos
from tests.conftest import run_cli

# builds models or indexes, runs the CLI or a server: seconds to minutes
pytestmark = pytest.mark.slow


def one_line_error(done):
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    return lines[0]


def status(env):
    return json.loads(run_cli("status", "--json", env=env).stdout)


def test_build_status_and_incremental_reruns(tmp_path, cli_env):
    photos = tmp_path / "photos"
    paths = write_photos(photos, 6)
    hostile = write_hostile_files(photos / "hostile")
    first = run_cli("build", str(photos), "--batch-size", "4", env=cli_env)
    assert first.stdout.startswith("new 6, updated 0, moved 0, removed 0, unchanged 0, failed 8")
    report = status(cli_env)
    assert (report["indexed"], report["vectors"], report["failed"]) == (6, 6, len(hostile))
    assert report["models"]["clip_model"] == cli_env["INDEXER_CLIP_MODEL"]
    assert report["models"]["caption_model"] == cli_env["INDEXER_CAPTION_MODEL"]
    assert {row["path"] for row in report["failures"]} == {str(p) for p in hostile.values()}

    rerun = json.loads(run_cli("build", str(photos), "--json", env=cli_env).stdout)
    assert (rerun["new"], rerun["model_calls"], rerun["unchanged"]) == (0, 0, 6 + len(hostile))

    scene(1000).save(paths[0])
    os.rename(paths[1], photos / "renamed.jpg")
    paths[2].unlink()
    changed = json.loads(run_cli("build", str(photos), "--json", env=cli_env).stdout)
    assert (changed["updated"], changed["moved"], changed["removed"]) == (1, 1, 1)
    assert changed["model_calls"] == 1
    report = status(cli_env)
    assert report["indexed"] == report["vectors"] == 5


def test_other_clip_model_is_refused_then_rebuilt(tmp_path, cli_env):
    from testing.models import make_clip_folder

    photos = tmp_path / "photos"
    write_photos(photos, 2)
    run_cli("build", str(photos), env=cli_env)
    other = make_clip_folder(tmp_path / "other_clip", size="tiny", seed=1)
    refused = run_cli("build", str(photos), "--clip-model", other, env=cli_env, check=False)
    assert "--rebuild" in one_line_error(refused)
    assert status(cli_env)["models"]["clip_model"] == cli_env["INDEXER_CLIP_MODEL"]
    run_cli("build", str(photos), "--clip-model", other, "--rebuild", env=cli_env)
    report = status(cli_env)
    assert report["models"]["clip_model"] == other and report["indexed"] == 2


def test_cannot_run_errors_are_one_line(tmp_path, cli_env):
    photos = tmp_path / "photos"
    write_photos(photos, 1)
    missing = one_line_error(run_cli("build", str(tmp_path / "nope"), env=cli_env, check=False))
    assert "does not exist" in missing

    no_model = run_cli("build", str(photos), "--caption-model", str(tmp_path / "no-model"),
                       env=cli_env, check=False)  # fmt: skip
    assert "caption model folder" in one_line_error(no_model)
    offline = run_cli("build", str(photos), "--clip-model", "hf-hub:nobody/no-such-clip",
                      env=cli_env, check=False)  # fmt: skip
    assert "could not be loaded" in one_line_error(offline)
    hub = run_cli("build", str(photos), "--caption-model", "damo/no-such-model",
                  env=cli_env, check=False)  # fmt: skip
    assert "not in the ModelScope cache" in one_line_error(hub)
    assert status(cli_env)["indexed"] == 0  # nothing was written

    with WriterLock(cli_env["INDEXER_HOME"]).held():
        locked = run_cli("build", str(photos), env=cli_env, check=False)
    assert "being built" in one_line_error(locked)

    bad_flag = run_cli("build", str(photos), "--batch-size", "0", env=cli_env, check=False)
    assert bad_flag.returncode == 2 and "Traceback" not in bad_flag.stderr


def test_status_names_the_default_per_user_folder(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "INDEXER_HOME"}
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    report = json.loads(run_cli("status", "--json", env=env).stdout)
    assert report["index"] == str(tmp_path / "data" / "photo-indexer")
    assert report["exists"] is False and report["indexed"] == 0
    text = run_cli("status", env=env).stdout
    assert str(tmp_path / "data" / "photo-indexer") in text and "not built yet" in text


def test_help_is_instant_and_every_command_has_an_example():
    code = "import sys, indexer.cli; print(sorted(m for m in ('torch', 'faiss', 'modelscope') " \
           "if m in sys.modules))"  # fmt: skip
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "[]"  # fmt: skip
    import click
    from click.testing import CliRunner

    from indexer.cli import main

    names = main.list_commands(click.Context(main))
    # the plugins (other packages' commands, found through entry points) are checked too
    assert {"build", "status", "search", "duplicates", "audit", "tag", "export", "ui"} <= set(
        names
    ), names
    for name in names:
        shown = CliRunner().invoke(main, [name, "--help"])
        assert shown.exit_code == 0, shown.output
        assert "Example:" in shown.output, f"`indexer {name} --help` has no example"


@pytest.mark.parametrize("args", [["build"], ["status", "--bogus"]])
def test_usage_errors_are_short(args, cli_env):
    done = run_cli(*args, env=cli_env, check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr
