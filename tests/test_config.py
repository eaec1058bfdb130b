from pathlib import Path

import pytest

from indexer.config import DEFAULT_CLIP_MODEL, default_index_dir, load_settings


def test_defaults_use_a_per_user_data_folder():
    settings = load_settings(environ={})
    assert settings.index_dir == default_index_dir()
    assert settings.index_dir != Path.cwd()
    assert settings.clip_model == DEFAULT_CLIP_MODEL


def test_environment_overrides_defaults_and_flags_override_environment(tmp_path):
    env = {"INDEXER_HOME": str(tmp_path / "env"), "INDEXER_CLIP_MODEL": "ViT-B-16",
           "INDEXER_DEVICE": "cpu", "INDEXER_BATCH_SIZE": "4"}  # fmt: skip
    settings = load_settings(environ=env)
    assert (settings.index_dir, settings.clip_model) == (tmp_path / "env", "ViT-B-16")
    assert (settings.device, settings.batch_size) == ("cpu", 4)
    flagged = load_settings({"index_dir": tmp_path / "flag", "clip_model": None}, environ=env)
    assert flagged.index_dir == tmp_path / "flag"
    assert flagged.clip_model == "ViT-B-16"  # a flag that was not given falls through


@pytest.mark.parametrize("env", [{"INDEXER_BATCH_SIZE": "zero"}, {"INDEXER_BATCH_SIZE": "0"},
                                 {"INDEXER_DEVICE": "tpu"}])  # fmt: skip
def test_bad_values_raise_one_line_errors(env):
    with pytest.raises(ValueError) as error:
        load_settings(environ=env)
    assert "\n" not in str(error.value)


def test_reading_text_in_photos_is_on_unless_turned_off():
    assert load_settings(environ={}).ocr is True
    for off in ("0", "false", "no", "off"):
        assert load_settings(environ={"INDEXER_OCR": off}).ocr is False, off
    assert load_settings({"ocr": True}, environ={"INDEXER_OCR": "0"}).ocr is True
    assert load_settings({"ocr": False}, environ={}).ocr is False
