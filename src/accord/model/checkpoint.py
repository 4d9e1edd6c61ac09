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
