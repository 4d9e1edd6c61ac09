"""Checkpoints that describe themselves: weights, optimizer, step, RNG, config, tokenizer and manifest root.

A checkpoint is one ``torch.save`` file of plain containers and tensors, so it loads with
``weights_only=True`` (no pickled code runs). It is written to a temporary file and renamed
into place, so a run cut off mid-write leaves the previous checkpoint whole.
"""

from __future__ import annotations

import importlib.metadata
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

import accord
from accord.errors import NotFound, ValidationError
from accord.model.gpt import GPT, GPTConfig
from accord.model.tokenizer import MusicTokenizer

FORMAT = "accord-checkpoint/1"
FILENAME = "ckpt.pt"


def versions() -> dict[str, str]:
    """Library versions saved with every checkpoint and model card."""
    return {
        "accord": accord.__version__,
        "torch": str(torch.__version__),
        "miditok": importlib.metadata.version("miditok"),
        "symusic": importlib.metadata.version("symusic"),
    }


def save_checkpoint(path: Path, payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` (plus format and versions) atomically to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".ckpt-", suffix=".tmp")
    os.close(fd)
    try:
        torch.save({"format": FORMAT, "versions": versions(), **payload}, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


SNAPSHOT_DIR = "snapshots"
SNAPSHOTS_KEPT = 5
"""Weight snapshots kept per model folder (the newest by step); older ones are deleted."""


def snapshot_path(model_dir: Path, step: int) -> Path:
    """``<model_dir>/snapshots/step-0001234.pt``: zero-padded, so names sort as steps do."""
    return model_dir / SNAPSHOT_DIR / f"step-{step:07d}.pt"


def save_snapshot(
    model_dir: Path, step: int, state_dict: Mapping[str, torch.Tensor], *, keep: int = SNAPSHOTS_KEPT
) -> Path:
    """Write ``{"model": state_dict, "step": step}`` to :func:`snapshot_path` (atomically) and keep the newest ``keep``.

    These are the weights along the training trajectory that attribution (TRAK) averages over;
    they load with ``torch.load(path, weights_only=True)``.
    """
    if keep < 1:
        msg = f"keep: {keep}; expected at least one snapshot kept"
        raise ValidationError(msg, field="keep", value=keep)
    path = snapshot_path(model_dir, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".snapshot-", suffix=".tmp")
    os.close(fd)
    try:
        torch.save({"model": {k: v.detach().cpu() for k, v in state_dict.items()}, "step": int(step)}, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    for old in list_snapshots(model_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def list_snapshots(model_dir: Path) -> list[Path]:
    """The model folder's weight snapshots, oldest step first."""
    folder = model_dir / SNAPSHOT_DIR
    return sorted(folder.glob("step-[0-9][0-9][0-9][0-9][0-9][0-9][0-9].pt")) if folder.is_dir() else []


def load_checkpoint(path: Path, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint's contents; ``path`` may be the file or the model folder holding ``ckpt.pt``."""
    if path.is_dir():
        path = path / FILENAME
    if not path.is_file():
        msg = f"checkpoint: {path} does not exist"
        raise NotFound(msg)
    data = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        msg = f"checkpoint: {path} has format {found!r}; expected {FORMAT!r}"
        raise ValidationError(msg, field="format", value=found)
    return data


def model_from_checkpoint(ckpt: Mapping[str, Any], *, device: torch.device | None = None) -> GPT:
    """The network a checkpoint holds, weights loaded, on ``device`` (CPU by default)."""
    model = GPT(GPTConfig(**ckpt["config"]))
    model.load_state_dict(ckpt["model"])
    return model.to(device or torch.device("cpu"))


def tokenizer_from_checkpoint(ckpt: Mapping[str, Any]) -> MusicTokenizer:
    return MusicTokenizer.from_dict(ckpt["tokenizer"])
