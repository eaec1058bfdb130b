"""The --out folder: what may be written there, the record of the run (finetune.json) and the
checkpoint a resumed run continues from. Nothing is ever written outside --out.

A folder is accepted as --out when it does not exist, is empty, or is an earlier run of
`indexer finetune` for the same task (it has a finetune.json saying so). Without --resume
such an earlier run is replaced: its record, checkpoint and weights are removed first;
files the user added stay. Anything else stops the command with one line.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from indexer.errors import IndexerError

from .model import WEIGHTS

MARKER = "finetune.json"
CHECKPOINT = "checkpoint"
_STATE = "state.pt"


def check_out(out: str | os.PathLike, task: str, resume: bool, base_folder: str) -> Path:
    """The --out folder as an absolute path, if it may be used (see the module docstring);
    IndexerError with one line if not. Nothing is changed."""
    out = Path(out).expanduser().absolute()
    if out.exists() and not out.is_dir():
        raise IndexerError(f"--out {out} is a file; give a folder for the trained model")
    if Path(base_folder).absolute() == out:
        raise IndexerError(f"--out {out} is the base model's folder; give a new folder")
    record = read_record(out)
    if out.is_dir() and any(out.iterdir()) and record is None:
        raise IndexerError(f"--out {out} exists and is not an earlier `indexer finetune` run; "
                           "give a new or empty folder")  # fmt: skip
    if record is not None and record.get("task") != task:
        raise IndexerError(f"--out {out} holds a finetuned {record.get('task')} model, not "
                           f"{task}; give another folder")  # fmt: skip
    if resume and not (out / CHECKPOINT / _STATE).is_file():
        raise IndexerError(f"nothing to resume in {out}: no checkpoint of an earlier run")
    return out


def prepare_out(out: str | os.PathLike, task: str, resume: bool, base_folder: str) -> Path:
    """The --out folder checked (`check_out`) and made ready: created if missing; without
    `resume`, an earlier run's record, checkpoint and weights removed."""
    out = check_out(out, task, resume, base_folder)
    record = read_record(out)
    if resume:
        return out
    if record is not None:
        for name in (MARKER, WEIGHTS):
            (out / name).unlink(missing_ok=True)
        shutil.rmtree(out / CHECKPOINT, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    return out


def read_record(out: Path) -> dict | None:
    """The run record in `out`, or None when there is none (or it is not ours)."""
    try:
        record = json.loads((out / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("command") else None


def write_record(out: Path, record: dict) -> None:
    _write_atomically(out / MARKER, json.dumps(record, indent=2, ensure_ascii=False) + "\n")


def save_checkpoint(out: Path, state: dict) -> None:
    """Save the training state (weights, optimizer state, step) so that --resume continues
    exactly here; the previous checkpoint is replaced only once this one is complete."""
    import torch

    folder = out / CHECKPOINT
    folder.mkdir(exist_ok=True)
    partial = folder / (_STATE + ".partial")
    torch.save(state, partial)
    os.replace(partial, folder / _STATE)


def load_checkpoint(out: Path, device) -> dict:
    """The saved training state (tensors only: loaded with weights_only)."""
    import torch

    path = out / CHECKPOINT / _STATE
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # noqa: BLE001  (a damaged file fails in many ways)
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise IndexerError(f"checkpoint {path} cannot be read ({reason}); start again "
                           "without --resume") from None  # fmt: skip


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
